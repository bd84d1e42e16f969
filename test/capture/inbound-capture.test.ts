// Inbound capture in the kernel (bpf/inbound_lookup.c, agent/redirect/inbound-capture.ts): a connection
// to an enrolled pod from a source that is not the node proxy is handed to the proxy's socket in the pod's
// namespace, with the original destination intact; the node's own addresses, the proxy's registered SYNs,
// loopback and STRICT ports are left alone; while no listener is there, connections are refused (never
// let past the policy); a pod that leaves takes its link, pin and map entries with it.
import t from 'tap';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

import { silentLogger } from '../../common/log.js';
import { InboundCapture, netnsOfCgroup, type InboundPod } from '../../agent/redirect/inbound-capture.js';
import type { RedirectManager } from '../../agent/redirect/manager.js';
import { uninstallPins } from '../../agent/redirect/pins.js';
import { netnsCookie } from '../../native/netns.js';
import { destroyLabCapture, openLabCapture, startPodServer } from '../helpers/lab-capture.js';
import { createLab, runIn } from '../helpers/netns.js';

const lab = createLab('inbound', 1);
const pod = lab.pods[0]!;
let podServer: ChildProcess | undefined;
let mgr: RedirectManager | undefined;
let inbound: InboundCapture | undefined;
const servers = new Set<net.Server>();
t.teardown(() => {
  podServer?.kill('SIGKILL');
  inbound?.close();
  for (const s of servers) s.close();
  mgr?.close();
  destroyLabCapture(lab);
});

mgr = openLabCapture(lab, { ipv6: true });
const enroll = (mode: 'STRICT' | 'PERMISSIVE') => mgr!.reconcile({ pods: [{ cgroupId: pod.cgroupId, uid: pod.uid, mode }], destinations: [] });
enroll('PERMISSIVE');

podServer = await startPodServer(pod, 8080);

/** What the stand-in proxy saw of each connection handed to it. */
const seen: Array<{ local: string; localPort: number; remote: string }> = [];
const serve = (fd: number) => {
  const server = net.createServer((s) => {
    seen.push({ local: s.localAddress!.replace(/^::ffff:/, ''), localPort: s.localPort!, remote: s.remoteAddress!.replace(/^::ffff:/, '') });
    s.resume();
    s.end('HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nproxy');
  });
  server.listen({ fd });
  servers.add(server);
  return () => {
    servers.delete(server);
    server.close();
  };
};
const podEntry: InboundPod = { uid: pod.uid, cgroupId: pod.cgroupId, cgroupPath: pod.cgroupPath, ips: [pod.ipv4, pod.ipv6] };
const pinNames = () => readdirSync(lab.pinDir).filter((n) => n.startsWith('link_in_'));

const curl = (source: string, target: string, opts: { connectTimeout?: number; localPort?: number } = {}) => {
  const ct = opts.connectTimeout ?? 5;
  return runIn(lab.strangerCgroup, lab.nodeNetnsPath, 'curl', [
    '-sS', '-g', '--connect-timeout', String(ct), '--max-time', String(ct + 5), '--interface', source,
    ...(opts.localPort ? ['--local-port', String(opts.localPort)] : []),
    `http://${target.includes(':') ? `[${target}]` : target}:8080/`,
  ]);
};

t.test('the pod\'s network namespace is found through a process in its cgroup', async (t) => {
  const ns = netnsOfCgroup(pod.cgroupPath);
  t.ok(ns, 'found');
  t.equal(netnsCookie(ns!), netnsCookie(pod.netnsPath), 'it is the pod\'s');
  t.equal(netnsOfCgroup(lab.cgroupRoot + '/no-such-pod'), undefined, 'no cgroup: not found (yet)');
});

t.test('steering on: a source outside the mesh reaches the proxy, with the original destination intact', async (t) => {
  inbound = InboundCapture.open({ pinDir: lab.pinDir, logger: silentLogger, serve });
  t.same(inbound.reconcile([podEntry]), { pending: [] });
  t.same(pinNames(), [`link_in_${pod.uid}`], 'one pinned link for the pod');
  const c0 = mgr!.readCounters();
  for (const [other, target] of [[pod.otherIpv4, pod.ipv4], [pod.otherIpv6, pod.ipv6]] as const) {
    seen.length = 0;
    const r = await curl(other, target);
    t.equal(r.stdout, 'proxy', `${other} -> ${target}: the proxy answered (${r.stderr})`);
    t.same(seen, [{ local: target, localPort: 8080, remote: other }], 'the proxy\'s socket: local = the pod\'s address and port, peer = the caller');
  }
  t.ok(mgr!.readCounters().inboundSteered - c0.inboundSteered >= 2n, 'steering counted');
});

t.test('not steered: the node\'s own address, a SYN the proxy registered, loopback inside the pod', async (t) => {
  seen.length = 0;
  t.equal((await curl(pod.nodeIpv4, pod.ipv4)).stdout, 'pod-ok', 'the node address reaches the pod itself');
  const syn = { sourceIp: pod.otherIpv4, sourcePort: 41011, ip: pod.ipv4, port: 8080 };
  mgr!.register(syn);
  t.equal((await curl(pod.otherIpv4, pod.ipv4, { localPort: 41011 })).stdout, 'pod-ok', 'the proxy\'s own delivery (registered 4-tuple) reaches the pod');
  mgr!.forget(syn);
  const lo = await runIn(lab.strangerCgroup, pod.netnsPath, 'curl', ['-sS', '--max-time', '3', 'http://127.0.0.1:8080/']);
  t.equal(lo.stdout, 'pod-ok', 'loopback inside the pod');
  t.same(seen, [], 'none of them came to the proxy');
});

t.test('STRICT: plaintext is not steered but dropped by the guard; the node address still gets in', async (t) => {
  enroll('STRICT');
  t.teardown(() => void enroll('PERMISSIVE'));
  seen.length = 0;
  t.equal((await curl(pod.otherIpv4, pod.ipv4, { connectTimeout: 1 })).code, 28, 'dropped (timed out)');
  t.equal((await curl(pod.nodeIpv4, pod.ipv4)).stdout, 'pod-ok');
  t.same(seen, []);
});

t.test('no listener (the agent is down): connections are refused, and a new agent takes over the pinned link', async (t) => {
  inbound!.close();
  inbound = undefined;
  t.same(pinNames(), [`link_in_${pod.uid}`], 'the link stays pinned while no agent runs');
  const c0 = mgr!.readCounters();
  const r = await curl(pod.otherIpv4, pod.ipv4, { connectTimeout: 1 });
  t.equal(r.code, 7, `refused (the kernel answers the SYN with a reset), not let past the proxy: ${r.stderr.trim()}`);
  t.ok(mgr!.readCounters().inboundNoListener - c0.inboundNoListener >= 1n, 'counted');
  inbound = InboundCapture.open({ pinDir: lab.pinDir, logger: silentLogger, serve });
  t.same(inbound.reconcile([podEntry]), { pending: [] });
  t.same(pinNames(), [`link_in_${pod.uid}`], 'still one link');
  t.equal((await curl(pod.otherIpv4, pod.ipv4)).stdout, 'proxy', 'steered again');
});

t.test('a pod that leaves takes its link, pin and entries; nothing is steered any more', async (t) => {
  t.same(inbound!.reconcile([]), { pending: [] });
  t.same(pinNames(), [], 'pin removed');
  t.equal((await curl(pod.otherIpv4, pod.ipv4)).stdout, 'pod-ok', 'the caller reaches the pod directly');
  t.same(inbound!.steered(), []);
});

t.test('a pod with no process yet is pending, and installed once it has one', async (t) => {
  const empty = join(lab.cgroupRoot, 'pod-empty');
  t.same(inbound!.reconcile([{ ...podEntry, cgroupPath: empty }]), { pending: [pod.uid] }, 'pending');
  t.same(pinNames(), [], 'nothing half-made');
  t.same(inbound!.reconcile([podEntry]), { pending: [] });
  t.equal((await curl(pod.otherIpv4, pod.ipv4)).stdout, 'proxy');
});

t.test('the proxy not serving (heartbeat lapsed): closed refuses callers outside the mesh, open lets them reach the pod', async (t) => {
  mgr!.notServing();
  t.teardown(() => {
    mgr!.noHeartbeat();
    enroll('PERMISSIVE');
  });
  const closed = await curl(pod.otherIpv4, pod.ipv4, { connectTimeout: 1 });
  t.equal(closed.code, 7, `fail closed: refused (${closed.stderr.trim()})`);
  mgr!.reconcile({ pods: [{ cgroupId: pod.cgroupId, uid: pod.uid, mode: 'PERMISSIVE', failOpen: true }], destinations: [] });
  seen.length = 0;
  t.equal((await curl(pod.otherIpv4, pod.ipv4)).stdout, 'pod-ok', 'fail open: the pod itself answers');
  t.same(seen, [], 'not through the proxy');
  mgr!.noHeartbeat();
  t.equal((await curl(pod.otherIpv4, pod.ipv4)).stdout, 'proxy', 'serving again: steered again');
});

t.test('uninstall removes the links with every other pin', async (t) => {
  inbound!.close();
  inbound = undefined;
  mgr!.close();
  mgr = undefined;
  const r = uninstallPins(lab.pinDir, silentLogger);
  t.ok(r.detached.includes(`link_in_${pod.uid}`), 'detached');
  t.notOk(existsSync(lab.pinDir), 'pin directory gone');
  t.equal((await curl(pod.otherIpv4, pod.ipv4)).stdout, 'pod-ok', 'the pod is reached directly again');
});
