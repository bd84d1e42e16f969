// Capture on a test lab (test/helpers/netns.ts): the RedirectManager for the lab's pin directory and cgroup
// root, with pod 0's node-side addresses as the proxy's, and a pod server (capture-client.ts serve) started
// inside a pod. Shared by the kernel tests so each states only what it checks.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';

import { silentLogger } from '../../common/log.js';
import { RedirectManager, type RedirectManagerOptions } from '../../agent/redirect/manager.js';
import { uninstallPins } from '../../agent/redirect/pins.js';
import { netnsCookie } from '../../native/netns.js';
import { spawnIn, type Lab, type PodNs } from './netns.js';
import { distRoot } from './paths.js';

export const CAPTURE_CLIENT = join(distRoot, 'test', 'helpers', 'capture-client.js');

/** RedirectManager.open on the lab; `ipv6`: capture IPv6 too (the proxy's v6 address is pod 0's node side). */
export function openLabCapture(lab: Lab, opts: { ipv6?: boolean } & Partial<RedirectManagerOptions> = {}): RedirectManager {
  const pod = lab.pods[0]!;
  const { ipv6, ...rest } = opts;
  return RedirectManager.open({
    pinDir: lab.pinDir,
    cgroupRoot: lab.cgroupRoot,
    proxy: { ipv4: pod.nodeIpv4, ...(ipv6 ? { ipv6: pod.nodeIpv6 } : {}), port: 15001 },
    hostNetnsCookie: netnsCookie(lab.nodeNetnsPath),
    logger: silentLogger,
    ...rest,
  });
}

/** Removes every pin of the lab's capture, then the lab itself (teardown). */
export function destroyLabCapture(lab: Lab): void {
  uninstallPins(lab.pinDir, silentLogger);
  lab.destroy();
}

/** An HTTP server answering "pod-ok" inside `pod` (its cgroup and netns) on [::]:port; resolves once listening. */
export async function startPodServer(pod: PodNs, port: number): Promise<ChildProcess> {
  const child = spawnIn(pod.cgroupPath, pod.netnsPath, process.execPath, [CAPTURE_CLIENT, 'serve', '::', String(port)]);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`pod server exited ${code}`)));
  });
  return child;
}
