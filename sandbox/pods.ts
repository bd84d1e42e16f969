// Pods: a netns (built by network.ts), a cgroup under the node's subtree, and a mount + UTS namespace
// pair kept alive by bind mounts (like /run/netns) that carries the pod's /etc/hosts, /etc/resolv.conf
// and hostname. Each container's command then runs unmodified inside all of them; `weft sandbox exec`
// enters exactly the same set, so what a user runs by hand sees what the pod sees.
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

import { makeCgroup } from './host/cgroup.js';
import { type EnterTarget, spawnIn } from './host/enter.js';
import { run } from './host/run.js';
import type { ContainerPlan, PodPlan } from './plan.js';

/** The directory holding the pods' namespace files must be a private mount for `unshare --mount=FILE`. */
export async function makeNamespaceDir(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await run('mount', ['--bind', dir, dir]);
  await run('mount', ['--make-private', dir]);
}

/** Unmounts every namespace file and the directory itself; missing ones are fine. */
export async function removeNamespaceDir(dir: string): Promise<void> {
  await run('umount', ['--recursive', '--lazy', dir], { allowFail: true });
}

export async function createPodNamespaces(pod: PodPlan): Promise<void> {
  makeCgroup(pod.cgroup);
  for (const f of [pod.mntns, pod.utsns]) writeFileSync(f, '');
  // The bind mounts happen in the new mount namespace only (private propagation): the host's files stay as they are.
  await run('unshare', [
    `--mount=${pod.mntns}`,
    `--uts=${pod.utsns}`,
    '--propagation', 'private',
    'sh', '-c', 'mount --bind "$0" /etc/hosts && mount --bind "$1" /etc/resolv.conf && hostname "$2"',
    pod.hostsFile,
    pod.resolvFile,
    pod.name.slice(0, 63),
  ]);
}

export function podTarget(pod: PodPlan, cwd?: string): EnterTarget {
  return { cgroup: pod.cgroup, netns: pod.netns, mntns: pod.mntns, utsns: pod.utsns, ...(cwd ? { cwd } : {}) };
}

/** The environment a pod's process gets: a clean one, as in a container, plus the container's env. */
export function podEnv(pod: PodPlan, extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    HOSTNAME: pod.name.slice(0, 63),
    ...(process.env.TERM ? { TERM: process.env.TERM } : {}),
    ...extra,
  };
}

/** Starts one container's command in its pod, detached, output appended to its log file. Returns the pid. */
export function startContainer(pod: PodPlan, c: ContainerPlan): number {
  mkdirSync(dirname(c.log), { recursive: true });
  const fd = openSync(c.log, 'a');
  try {
    const child = spawnIn(podTarget(pod, c.cwd), c.argv, { env: podEnv(pod, c.env), stdio: ['ignore', fd, fd], detached: true });
    child.on('error', () => {}); // reported through the exit check below
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start ${c.argv[0]}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** The last line of a container's log, for "exited right after start" messages. */
export function lastLogLine(c: ContainerPlan): string {
  try {
    const lines = readFileSync(c.log, 'utf8').trim().split('\n');
    return lines[lines.length - 1] ?? '';
  } catch {
    return '';
  }
}
