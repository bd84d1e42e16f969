// The capture path end to end on the real kernel: an unmodified curl in a pod stand-in (netns + cgroup,
// no route out) connects to a mesh VIP and lands on the stand-in node proxy, which recovers the original
// destination and the pod's cgroup id through RedirectManager.lookup. What must not be captured fails
// inside the pod's namespace (no route), so a broken redirect can never leak.
import t from 'tap';
import http from 'node:http';
import type net from 'node:net';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

import { silentLogger } from '../../common/log.js';
import { RedirectManager, type RedirectManagerOptions } from '../../agent/redirect/manager.js';
import { OBJECTS } from '../../agent/redirect/layout.js';
import { linkPin, uninstallPins } from '../../agent/redirect/pins.js';
import { BpfLink, linkExists } from '../../native/bpf.js';
import { netnsCookie } from '../../native/netns.js';
import { closeServer, createLab, listenInNetns, runIn, spawnIn } from '../helpers/netns.js';
import { distRoot, weftBin } from '../helpers/paths.js';
import { spawnSync } from 'node:child_process';
import { cgroupId } from '../../native/cgroup.js';

const lab = createLab('redir', 1);
const pod = lab.pods[0]!;
const servers: net.Server[] = [];
let mgr: RedirectManager | undefined;

t.teardown(async () => {
  for (const s of servers) await closeServer(s);
  mgr?.close();
  uninstallPins(lab.pinDir, silentLogger);
  lab.destroy();
});

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

const VIP4 = '10.97.0.10';
const VIP6 = 'fd00:97::10';
const client = join(distRoot, 'test', 'helpers', 'capture-client.js');

const opts: RedirectManagerOptions = {
  pinDir: lab.pinDir,
  cgroupRoot: lab.cgroupRoot,
  proxy: { ipv4: pod.nodeIpv4, ipv6: pod.nodeIpv6, port: 15001 },
  hostNetnsCookie: netnsCookie(lab.nodeNetnsPath),
  logger: silentLogger,
};

// The stand-in node proxy: answers each request with what the lookup recovered for its connection.
const accepted: Array<{ peer: { ip: string; port: number }; local: { ip: string; port: number } }> = [];
function standIn(req: http.IncomingMessage, res: http.ServerResponse): void {
  const s = req.socket;
  const orig = mgr?.lookup({ ip: s.remoteAddress!, port: s.remotePort! }, { ip: s.localAddress!, port: s.localPort! });
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(orig ? { ...orig, cgroupId: orig.cgroupId.toString() } : { miss: true }));
}
const standInHttp = http.createServer(standIn);
for (const host of [pod.nodeIpv4, pod.nodeIpv6]) {
  const server = await listenInNetns(lab.nodeNetnsPath, host, 15001, (sock: net.Socket) => {
    accepted.push({ peer: { ip: sock.remoteAddress!, port: sock.remotePort! }, local: { ip: sock.localAddress!, port: sock.localPort! } });
    standInHttp.emit('connection', sock);
  });
  servers.push(server);
}

mgr = RedirectManager.open(opts);
const desired = {
  pods: [{ cgroupId: pod.cgroupId, uid: pod.uid, mode: 'PERMISSIVE' as const }],
  destinations: [
    { ip: VIP4, port: 80 },
    { ip: VIP6, port: 80 },
  ],
};
const firstReconcile = mgr.reconcile(desired);

const curl = (url: string, cgroup = pod.cgroupPath, netns = pod.netnsPath) =>
  runIn(cgroup, netns, 'curl', ['-sS', '-g', '--max-time', '5', url]);

t.test('IPv4: curl to a mesh VIP lands on the node proxy, which recovers destination and cgroup', async (t) => {
  const r = await curl(`http://${VIP4}/`);
  t.equal(r.code, 0, `curl succeeded: ${r.stderr}`);
  t.same(JSON.parse(r.stdout), { ip: VIP4, port: 80, family: 4, cgroupId: pod.cgroupId.toString() });
});

t.test('dual-stack: an IPv6 socket to a v4-mapped VIP is captured as IPv4', async (t) => {
  const r = await curl(`http://[::ffff:${VIP4}]/`);
  t.equal(r.code, 0, `curl succeeded: ${r.stderr}`);
  t.same(JSON.parse(r.stdout), { ip: VIP4, port: 80, family: 4, cgroupId: pod.cgroupId.toString() });
});

t.test('IPv6: the same for an IPv6 VIP', async (t) => {
  const r = await curl(`http://[${VIP6}]/`);
  t.equal(r.code, 0, `curl succeeded: ${r.stderr}`);
  t.same(JSON.parse(r.stdout), { ip: VIP6, port: 80, family: 6, cgroupId: pod.cgroupId.toString() });
});

t.test('a non-mesh destination is not rewritten (fails inside the pod: no route)', async (t) => {
  const before = accepted.length;
  for (const url of [`http://10.97.0.11/`, `http://${VIP4}:81/`, `http://[fd00:97::11]/`]) {
    const r = await curl(url);
    t.not(r.code, 0, `${url} was not captured`);
    t.match(r.stderr, /unreachable|Couldn't connect|Failed to connect/i, `${url} failed for lack of a route`);
  }
  t.equal(accepted.length, before, 'the proxy saw no connection');
});

t.test('a cgroup that is not enrolled is not rewritten', async (t) => {
  const before = accepted.length;
  const r = await curl(`http://${VIP4}/`, lab.strangerCgroup);
  t.not(r.code, 0, 'not captured');
  t.equal(accepted.length, before, 'the proxy saw no connection');
});

t.test("the proxy's own connections are never rewritten", async (t) => {
  const before = accepted.length;
  const c0 = mgr!.readCounters();
  // host netns cookie: an enrolled cgroup's socket in the node (proxy's) namespace
  const r = await curl(`http://${VIP4}/`, pod.cgroupPath, lab.nodeNetnsPath);
  t.not(r.code, 0, 'a socket in the host network namespace is not captured');
  // SO_MARK 0x539 in the pod's own namespace
  const marked = await runIn(pod.cgroupPath, pod.netnsPath, process.execPath, [client, 'marked', VIP4, '80', String(0x539)]);
  t.same(JSON.parse(marked.stdout), { ok: false, errno: 'ENETUNREACH' }, 'a socket marked 0x539 is not captured');
  // control: the same client without the mark is captured
  const unmarked = await runIn(pod.cgroupPath, pod.netnsPath, process.execPath, [client, 'marked', VIP4, '80', '0']);
  t.same(JSON.parse(unmarked.stdout), { ok: true }, 'control: an unmarked socket is captured');
  const c1 = mgr!.readCounters();
  t.equal(c1.loopSkips - c0.loopSkips, 2n, 'both skips counted');
  t.equal(accepted.length, before + 1, 'only the control reached the proxy');
});

t.test('reconcile is idempotent and validates before changing anything', async (t) => {
  t.same(firstReconcile, { enrolled: 1, unenrolled: 0, modeChanged: 0, destinationsAdded: 2, destinationsRemoved: 0 });
  t.same(mgr!.reconcile(desired), { enrolled: 0, unenrolled: 0, modeChanged: 0, destinationsAdded: 0, destinationsRemoved: 0 }, 'nothing to do the second time');
  t.throws(() => mgr!.reconcile({ ...desired, destinations: [...desired.destinations, { ip: 'not-an-ip', port: 80 }] }), { code: 'WEFT_ERR_BPF_CODEC' });
  t.equal(mgr!.mapEntries().destinations, 2, 'a refused snapshot changed nothing');
  const other = { cgroupId: 424242n, uid: 'other', mode: 'STRICT' as const };
  t.same(mgr!.reconcile({ pods: [...desired.pods, other], destinations: [desired.destinations[0]!] }), { enrolled: 1, unenrolled: 0, modeChanged: 0, destinationsAdded: 0, destinationsRemoved: 1 });
  t.same(mgr!.reconcile(desired), { enrolled: 0, unenrolled: 1, modeChanged: 0, destinationsAdded: 1, destinationsRemoved: 0 }, 'and back');
});

t.test('counters and map entries', async (t) => {
  const c = mgr!.readCounters();
  t.ok(c.redirected >= 3n, `redirected counted (${c.redirected})`);
  t.ok(c.passed >= 3n, `passed counted (${c.passed})`);
  t.same(mgr!.mapEntries().pods, 1);
  t.same(mgr!.mapEntries().destinations, 2);
  t.same(mgr!.lookup({ ip: pod.ipv4, port: 1 }, { ip: pod.nodeIpv4, port: 15001 }), undefined, 'an unknown tuple is a miss');
});

t.test('agent restart: connections made while no manager runs are still redirected', async (t) => {
  mgr!.close();
  mgr = undefined;
  const bpfFds = readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return /bpf/.test(readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      return false;
    }
  });
  t.same(bpfFds, [], 'this process holds no BPF object any more: only the pins keep capture alive');
  const before = accepted.length;
  const holder = spawnIn(pod.cgroupPath, pod.netnsPath, process.execPath, [client, 'hold', VIP4, '80']);
  t.teardown(() => void holder.kill('SIGKILL'));
  const line = await new Promise<string>((resolve) => holder.stdout!.once('data', (d: Buffer) => resolve(d.toString())));
  t.match(JSON.parse(line), { local: pod.ipv4 }, 'the pod connected while no manager existed');
  t.equal(accepted.length, before + 1, 'and landed on the node proxy');
  const conn = accepted[accepted.length - 1]!;

  mgr = RedirectManager.open(opts);
  t.same(mgr.attach, { attached: [], reused: OBJECTS.map((o) => o.link) }, 'the new manager re-used every pinned link');
  const orig = mgr.lookup(conn.peer, conn.local);
  t.same(orig, { ip: VIP4, port: 80, family: 4, cgroupId: pod.cgroupId }, 'and finds the record made meanwhile');
  t.same(mgr.enrolled().map((p) => p.cgroupId), [pod.cgroupId], 'enrolment survived');
  holder.stdin!.end();
  await new Promise((r) => holder.once('close', r));
});

t.test('uninstall leaves no link, pin or cgroup behind', async (t) => {
  const ids = OBJECTS.map((o) => {
    const l = BpfLink.openPinned(linkPin(lab.pinDir, o.link));
    try {
      return l.info().id;
    } finally {
      l.close();
    }
  });
  t.ok(ids.every((id) => linkExists(id)), 'links exist before');
  const status = spawnSync(process.execPath, [weftBin, 'capture', 'status', '--bpffs', lab.pinDir, '--json'], { encoding: 'utf8' });
  t.equal(status.status, 0, `weft capture status ran: ${status.stderr}`);
  const s = JSON.parse(status.stdout) as { links: Array<{ attached: boolean; cgroupId: string }>; maps: Record<string, number> };
  t.ok(s.links.every((l) => l.attached && l.cgroupId === String(cgroupId(lab.cgroupRoot))), 'status: every link attached at the lab root');
  t.equal(s.maps.weft_pods, 1, 'status: one enrolled pod');
  const report = mgr!.uninstall();
  mgr = undefined;
  t.equal(report.detached.length, 4, 'four links detached');
  t.equal(report.removedDir, true, 'pin directory removed');
  t.notOk(existsSync(lab.pinDir), 'no pins left');
  // the kernel frees a detached link once its last reference drops, from a deferred work item
  t.ok(await waitFor(() => ids.every((id) => !linkExists(id)), 3000), 'no link left in the kernel');
  const r = await curl(`http://${VIP4}/`);
  t.not(r.code, 0, 'nothing is captured any more');
  for (const s of servers.splice(0)) await closeServer(s);
  lab.destroy();
  t.notOk(existsSync(lab.cgroupRoot), 'cgroup root removed');
  t.notOk(existsSync(lab.nodeNetnsPath), 'node netns removed');
});
