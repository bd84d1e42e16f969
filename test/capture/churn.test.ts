// 10,000 redirected connections opened and closed leave no records behind: sockops moves each record
// to the 4-tuple map when the connection is established, the proxy consumes it when it accepts (even
// when the client has already closed), records the proxy never asked for are swept once closed, and
// connections that never establish (refused) are cleaned up by sockops. Ends with `weft capture uninstall`.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type net from 'node:net';
import { join } from 'node:path';

import { silentLogger } from '../../common/log.js';
import { RedirectManager } from '../../agent/redirect/manager.js';
import { uninstallPins } from '../../agent/redirect/pins.js';
import { netnsCookie } from '../../native/netns.js';
import { closeServer, createLab, listenInNetns, runIn } from '../helpers/netns.js';
import { distRoot, weftBin } from '../helpers/paths.js';

const lab = createLab('churn', 1);
const pod = lab.pods[0]!;
let server: net.Server | undefined;
let mgr: RedirectManager | undefined;
t.teardown(async () => {
  if (server) await closeServer(server);
  mgr?.close();
  uninstallPins(lab.pinDir, silentLogger);
  lab.destroy();
});

const client = join(distRoot, 'test', 'helpers', 'capture-client.js');
const VIP = '10.97.1.20';

mgr = RedirectManager.open({
  pinDir: lab.pinDir,
  cgroupRoot: lab.cgroupRoot,
  proxy: { ipv4: pod.nodeIpv4, port: 15001 },
  hostNetnsCookie: netnsCookie(lab.nodeNetnsPath),
  logger: silentLogger,
  sweepIntervalMs: 0, // sweeps happen when this test says so
});
mgr.reconcile({ pods: [{ cgroupId: pod.cgroupId, uid: pod.uid, mode: 'PERMISSIVE' }], destinations: [{ ip: VIP, port: 80 }] });

async function drained(m: RedirectManager, ms: number): Promise<{ origByCookie: number; origByTuple: number }> {
  const end = Date.now() + ms;
  for (;;) {
    const e = m.mapEntries();
    if ((e.origByCookie === 0 && e.origByTuple === 0) || Date.now() > end) return { origByCookie: e.origByCookie, origByTuple: e.origByTuple };
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('10,000 connections opened and closed leave no entries in the original-destination maps', async (t) => {
  let accepted = 0;
  let misses = 0;
  // the stand-in proxy does what the real one does: one lookup per accepted connection
  server = await listenInNetns(lab.nodeNetnsPath, pod.nodeIpv4, 15001, (sock) => {
    accepted++;
    const orig = mgr!.lookup({ ip: sock.remoteAddress!, port: sock.remotePort! }, { ip: sock.localAddress!, port: sock.localPort! });
    if (!orig || orig.ip !== VIP || orig.cgroupId !== pod.cgroupId) misses++;
    sock.on('error', () => {});
    sock.destroy();
  });
  const c0 = mgr!.readCounters();
  const r = await runIn(pod.cgroupPath, pod.netnsPath, process.execPath, [client, 'loop', VIP, '80', '10000', '32'], 60_000);
  t.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { ok: number; failed: number; errors: Record<string, number> };
  t.equal(summary.ok, 10000, `all connected (errors: ${JSON.stringify(summary.errors)})`);
  const c1 = mgr!.readCounters();
  t.equal(c1.redirected - c0.redirected, 10000n, 'every connection was redirected');
  t.same(await drained(mgr!, 5000), { origByCookie: 0, origByTuple: 0 }, 'both record maps are empty');
  t.ok(accepted >= 10000, 'the proxy accepted them all');
  t.equal(misses, 0, 'and found every record, although each client closed right after connecting');
});

t.test('records the proxy never consumed are swept once their connection closed', async (t) => {
  await closeServer(server!);
  server = await listenInNetns(lab.nodeNetnsPath, pod.nodeIpv4, 15001, (sock) => {
    sock.on('error', () => {});
    sock.destroy(); // a proxy that never looks up
  });
  const r = await runIn(pod.cgroupPath, pod.netnsPath, process.execPath, [client, 'loop', VIP, '80', '300', '8'], 30_000);
  t.equal((JSON.parse(r.stdout) as { ok: number }).ok, 300);
  t.equal(mgr!.sweep(60_000).tuples, 0, 'nothing is swept within the grace period');
  const end = Date.now() + 5000;
  let swept = 0;
  while (Date.now() < end) {
    swept += mgr!.sweep(0).tuples;
    if (mgr!.mapEntries().origByTuple === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(swept, 300, 'every closed record was swept');
  t.same(await drained(mgr!, 1000), { origByCookie: 0, origByTuple: 0 });
});

t.test('refused connections (never established) leave nothing behind', async (t) => {
  await closeServer(server!);
  server = undefined;
  const r = await runIn(pod.cgroupPath, pod.netnsPath, process.execPath, [client, 'loop', VIP, '80', '200', '8'], 30_000);
  const summary = JSON.parse(r.stdout) as { ok: number; failed: number; errors: Record<string, number> };
  t.same(summary.errors, { ECONNREFUSED: 200 }, 'redirected to the (closed) proxy port and refused there');
  t.same(await drained(mgr!, 5000), { origByCookie: 0, origByTuple: 0 }, 'no record of a refused connection remains');
});

t.test('weft capture uninstall removes the instance', async (t) => {
  mgr!.close();
  mgr = undefined;
  const r = spawnSync(process.execPath, [weftBin, 'capture', 'uninstall', '--bpffs', lab.pinDir, '--json'], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { detached: string[]; removedDir: boolean };
  t.equal(report.detached.length, 4);
  t.equal(report.removedDir, true);
  t.notOk(existsSync(lab.pinDir));
  const again = spawnSync(process.execPath, [weftBin, 'capture', 'status', '--bpffs', lab.pinDir], { encoding: 'utf8' });
  t.equal(again.status, 1, 'status of a removed instance fails');
  t.match(again.stderr, /WEFT_ERR_CAPTURE_NOT_INSTALLED/);
});
