// The inbound guard: a STRICT pod accepts TCP connections only from the local node proxy's address (and
// loopback); PERMISSIVE pods accept anyone; a STRICT pod's own outbound connections keep working.
import t from 'tap';
import type { ChildProcess } from 'node:child_process';
import type net from 'node:net';
import { join } from 'node:path';

import { silentLogger } from '../../common/log.js';
import { RedirectManager } from '../../agent/redirect/manager.js';
import { uninstallPins } from '../../agent/redirect/pins.js';
import { BpfLink } from '../../native/bpf.js';
import { netnsCookie } from '../../native/netns.js';
import { destroyLabCapture, openLabCapture, startPodServer } from '../helpers/lab-capture.js';
import { closeServer, createLab, listenInNetns, runIn } from '../helpers/netns.js';

const lab = createLab('guard', 1);
const pod = lab.pods[0]!;
let podServer: ChildProcess | undefined;
let outside: net.Server | undefined;
let mgr: RedirectManager | undefined;
t.teardown(async () => {
  podServer?.kill('SIGKILL');
  if (outside) await closeServer(outside);
  mgr?.close();
  destroyLabCapture(lab);
});

mgr = openLabCapture(lab, { ipv6: true });
const enroll = (mode: 'STRICT' | 'PERMISSIVE') => mgr!.reconcile({ pods: [{ cgroupId: pod.cgroupId, uid: pod.uid, mode }], destinations: [] });
enroll('STRICT');

// a workload in the pod (its listening socket belongs to the pod's cgroup)
podServer = await startPodServer(pod, 8080);

/** curl from the node namespace, from a chosen source address, to the pod. */
// expected drops wait 1 s for a SYN-ACK that never comes; accepted connections get a generous timeout
const fromNode = (source: string, target: string, connectTimeout = 5) =>
  runIn(lab.strangerCgroup, lab.nodeNetnsPath, 'curl', ['-sS', '-g', '--connect-timeout', String(connectTimeout), '--max-time', String(connectTimeout + 5), '--interface', source, `http://${target.includes(':') ? `[${target}]` : target}:8080/`]);

t.test('STRICT: the node proxy address may connect, any other source may not', async (t) => {
  const c0 = mgr!.readCounters();
  for (const [proxy, other, target] of [
    [pod.nodeIpv4, pod.otherIpv4, pod.ipv4],
    [pod.nodeIpv6, pod.otherIpv6, pod.ipv6],
  ] as const) {
    const ok = await fromNode(proxy, target);
    t.equal(ok.stdout, 'pod-ok', `${proxy} -> ${target} accepted: ${ok.stderr}`);
    const dropped = await fromNode(other, target, 1);
    t.equal(dropped.code, 28, `${other} -> ${target} timed out: its SYN was dropped (${dropped.stderr.trim()})`);
  }
  const c1 = mgr!.readCounters();
  t.ok(c1.guardDrops - c0.guardDrops >= 2n, `guard drops counted (${c1.guardDrops - c0.guardDrops}; SYN retries count too)`);
});

t.test('STRICT: loopback inside the pod and the pod\'s own outbound connections still work', async (t) => {
  const lo = await runIn(lab.strangerCgroup, pod.netnsPath, 'curl', ['-sS', '--max-time', '3', 'http://127.0.0.1:8080/']);
  t.equal(lo.stdout, 'pod-ok', `loopback accepted: ${lo.stderr}`);
  // a plaintext server outside the mesh, reached by the STRICT pod itself: replies are not inspected
  outside = await listenInNetns(lab.nodeNetnsPath, pod.otherIpv4, 9090, (s) => {
    s.resume();
    s.end('HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nout');
  });
  const out = await runIn(pod.cgroupPath, pod.netnsPath, 'curl', ['-sS', '--max-time', '3', `http://${pod.otherIpv4}:9090/`]);
  t.equal(out.stdout, 'out', `outbound from a STRICT pod works: ${out.stderr}`);
});

t.test('PERMISSIVE: any source may connect', async (t) => {
  enroll('PERMISSIVE');
  const r = await fromNode(pod.otherIpv4, pod.ipv4);
  t.equal(r.stdout, 'pod-ok', r.stderr);
  enroll('STRICT');
  const again = await fromNode(pod.otherIpv4, pod.ipv4, 1);
  t.equal(again.code, 28, 'and STRICT again drops it');
});

t.test('a second installation into the same pin directory at another cgroup is refused', async (t) => {
  t.throws(
    () => RedirectManager.open({ pinDir: lab.pinDir, cgroupRoot: lab.strangerCgroup, proxy: { ipv4: pod.nodeIpv4 }, logger: silentLogger }),
    { code: 'WEFT_ERR_CAPTURE_CONFLICT', message: /weft capture uninstall/ },
  );
  t.equal(mgr!.enrolled().length, 1, 'the running installation is untouched');
});

t.test('portLevelMtls: a port whose mode differs from the pod\'s follows its own mode', async (t) => {
  const second = await startPodServer(pod, 8081);
  t.teardown(() => void second.kill('SIGKILL'));
  const to = (port: number, connectTimeout: number) =>
    runIn(lab.strangerCgroup, lab.nodeNetnsPath, 'curl', ['-sS', '--connect-timeout', String(connectTimeout), '--max-time', String(connectTimeout + 5), '--interface', pod.otherIpv4, `http://${pod.ipv4}:${port}/`]);
  const reconcile = (mode: 'STRICT' | 'PERMISSIVE', ports: { port: number; mode: 'STRICT' | 'PERMISSIVE' | 'DISABLE' }[]) =>
    mgr!.reconcile({ pods: [{ cgroupId: pod.cgroupId, uid: pod.uid, mode, ports }], destinations: [] });

  reconcile('STRICT', [{ port: 8080, mode: 'PERMISSIVE' }]);
  t.same(mgr!.enrolled()[0]!.ports, [{ port: 8080, mode: 'PERMISSIVE' }], 'the override is in the kernel map');
  t.equal((await to(8080, 5)).stdout, 'pod-ok', 'STRICT pod, PERMISSIVE port 8080: plaintext accepted');
  t.equal((await to(8081, 1)).code, 28, 'STRICT pod, port 8081 without override: dropped');

  reconcile('PERMISSIVE', [{ port: 8081, mode: 'STRICT' }]);
  t.equal((await to(8080, 5)).stdout, 'pod-ok', 'PERMISSIVE pod, port 8080: accepted');
  t.equal((await to(8081, 1)).code, 28, 'PERMISSIVE pod, STRICT port 8081: dropped');
  const viaProxy = await runIn(lab.strangerCgroup, lab.nodeNetnsPath, 'curl', ['-sS', '--max-time', '10', '--interface', pod.nodeIpv4, `http://${pod.ipv4}:8081/`]);
  t.equal(viaProxy.stdout, 'pod-ok', `the node proxy address still reaches the STRICT port: ${viaProxy.stderr}`);

  reconcile('STRICT', []);
  t.equal(mgr!.enrolled()[0]!.ports, undefined, 'overrides removed with the policy');
  t.equal((await to(8080, 1)).code, 28, 'STRICT everywhere again');
});

t.test('STRICT: a SYN the proxy registered (weft_proxy_syn) is admitted whatever its source address', async (t) => {
  enroll('STRICT');
  const from = (localPort: number, connectTimeout: number) =>
    runIn(lab.strangerCgroup, lab.nodeNetnsPath, 'curl', ['-sS', '--connect-timeout', String(connectTimeout), '--max-time', String(connectTimeout + 5), '--interface', pod.otherIpv4, '--local-port', String(localPort), `http://${pod.ipv4}:8080/`]);
  const syn = { sourceIp: pod.otherIpv4, sourcePort: 41001, ip: pod.ipv4, port: 8080 };
  mgr!.register(syn);
  const ok = await from(41001, 5);
  t.equal(ok.stdout, 'pod-ok', `registered 4-tuple accepted: ${ok.stderr}`);
  mgr!.forget(syn);
  const dropped = await from(41002, 1);
  t.equal(dropped.code, 28, 'same source address, unregistered 4-tuple: dropped');
});

t.test('repairLinks: a program detached behind the agent\'s back is attached again (the capture audit)', async (t) => {
  enroll('STRICT');
  const link = BpfLink.openPinned(join(lab.pinDir, 'link_inbound_guard'));
  link.detach();
  link.close();
  t.equal((await fromNode(pod.otherIpv4, pod.ipv4)).stdout, 'pod-ok', 'detached: the guard no longer drops');
  t.same(mgr!.repairLinks(), ['link_inbound_guard'], 'the detached link is attached again');
  t.equal((await fromNode(pod.otherIpv4, pod.ipv4, 1)).code, 28, 'repaired: plaintext dropped again');
  t.same(mgr!.repairLinks(), [], 'nothing left to repair');
});
