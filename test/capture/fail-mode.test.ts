// Fail mode in the kernel: while the node proxy is serving (no heartbeat kept, or its deadline ahead) an
// enrolled pod's connection to a mesh destination is steered to it; once it is not (notServing, or the
// heartbeat's deadline passed), the pod's fail mode decides: closed refuses the connect, open lets it go
// direct, STRICT always refuses. Each verdict is counted.
import t from 'tap';
import type net from 'node:net';

import type { RedirectManager } from '../../agent/redirect/manager.js';
import { destroyLabCapture, openLabCapture } from '../helpers/lab-capture.js';
import { closeServer, createLab, listenInNetns, runIn } from '../helpers/netns.js';

const lab = createLab('failmode', 1);
const pod = lab.pods[0]!;
const servers: net.Server[] = [];
let mgr: RedirectManager | undefined;
t.teardown(async () => {
  for (const s of servers) await closeServer(s);
  mgr?.close();
  destroyLabCapture(lab);
});

mgr = openLabCapture(lab);
const answer = (body: string) => (s: net.Socket) => {
  s.resume();
  s.end(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
};
// the stand-in proxy, and the mesh destination itself (reached only when a connection goes direct)
servers.push(await listenInNetns(lab.nodeNetnsPath, pod.nodeIpv4, 15001, answer('proxy')));
servers.push(await listenInNetns(lab.nodeNetnsPath, pod.otherIpv4, 9090, answer('direct')));
const enroll = (mode: 'STRICT' | 'PERMISSIVE', failOpen = false) =>
  mgr!.reconcile({ pods: [{ cgroupId: pod.cgroupId, uid: pod.uid, mode, ...(failOpen ? { failOpen } : {}) }], destinations: [{ ip: pod.otherIpv4, port: 9090 }] });
const call = () => runIn(pod.cgroupPath, pod.netnsPath, 'curl', ['-sS', '--max-time', '3', `http://${pod.otherIpv4}:9090/`]);
const now = () => process.hrtime.bigint();

t.test('serving: captured (no heartbeat kept, then a heartbeat ahead)', async (t) => {
  enroll('PERMISSIVE');
  t.equal((await call()).stdout, 'proxy', 'no heartbeat: always serving');
  mgr!.servingUntil(now() + 10_000_000_000n);
  t.equal((await call()).stdout, 'proxy', 'heartbeat ahead: serving');
});

t.test('not serving, fail closed (the default): the connect is refused, and counted', async (t) => {
  mgr!.notServing();
  const c0 = mgr!.readCounters();
  const r = await call();
  t.equal(r.code, 7, `refused at connect (${r.stderr.trim()})`);
  t.match(r.stderr, /not permitted|Couldn't connect|Failed to connect/i);
  t.equal(mgr!.readCounters().failClosed - c0.failClosed, 1n, 'counted');
});

t.test('not serving, fail open: the connection goes direct, and is counted; STRICT never fails open', async (t) => {
  enroll('PERMISSIVE', true);
  t.same(mgr!.enrolled()[0]!.failOpen, true, 'the flag is in the kernel map');
  const c0 = mgr!.readCounters();
  t.equal((await call()).stdout, 'direct', 'went to the destination itself');
  t.equal(mgr!.readCounters().failOpen - c0.failOpen, 1n, 'counted');
  enroll('STRICT', true);
  t.equal((await call()).code, 7, 'STRICT pod: refused even with fail-mode open');
  enroll('PERMISSIVE', true);
});

t.test('a heartbeat that is not renewed lapses by itself; a new one switches back', async (t) => {
  mgr!.servingUntil(now() + 400_000_000n);
  t.equal((await call()).stdout, 'proxy', 'within the deadline: captured');
  await new Promise((r) => setTimeout(r, 600));
  t.equal((await call()).stdout, 'direct', 'deadline passed: the fail mode (open) applies');
  mgr!.servingUntil(now() + 10_000_000_000n);
  t.equal((await call()).stdout, 'proxy', 'heartbeat again: captured again');
  mgr!.noHeartbeat();
});

t.test('connections to addresses that are not mesh destinations are never touched by the fail mode', async (t) => {
  enroll('PERMISSIVE');
  mgr!.notServing();
  t.teardown(() => mgr!.noHeartbeat());
  servers.push(await listenInNetns(lab.nodeNetnsPath, pod.otherIpv4, 9091, answer('outside')));
  const r = await runIn(pod.cgroupPath, pod.netnsPath, 'curl', ['-sS', '--max-time', '3', `http://${pod.otherIpv4}:9091/`]);
  t.equal(r.stdout, 'outside', r.stderr);
});
