// Benchmark of the capture path: connections per second and connect latency (p50/p99) from a pod
// stand-in, redirected by eBPF to a stand-in node proxy (which looks each connection up, as the real
// proxy does) versus direct to a plain listener; plus the cost of one RedirectManager.lookup.
//
//   node dist/bench/capture.js [--connections 5000] [--concurrency 16] [--json]
//
// Needs root (namespaces, cgroups, eBPF). Everything it creates is removed at exit.
import { fileURLToPath } from 'node:url';

import { silentLogger } from '../common/log.js';
import { RedirectManager } from '../agent/redirect/manager.js';
import { uninstallPins } from '../agent/redirect/pins.js';
import { netnsCookie } from '../native/netns.js';
import { closeServer, createLab, listenInNetns, runIn, spawnIn } from '../test/helpers/netns.js';

interface LoopResult {
  ok: number;
  failed: number;
  errors: Record<string, number>;
  seconds: number;
  p50: number;
  p99: number;
}

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

const connections = arg('connections', 5000);
const concurrency = arg('concurrency', 16);
const json = process.argv.includes('--json');
const client = fileURLToPath(new URL('../test/helpers/capture-client.js', import.meta.url));
const VIP = '10.97.3.30';

const lab = createLab('bench', 1);
const pod = lab.pods[0]!;
let mgr: RedirectManager | undefined;
const servers: import('node:net').Server[] = [];

async function loop(host: string, port: number): Promise<LoopResult> {
  const r = await runIn(pod.cgroupPath, pod.netnsPath, process.execPath, [client, 'loop', host, String(port), String(connections), String(concurrency)], 300_000);
  if (r.code !== 0) throw new Error(`client failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as LoopResult;
}

try {
  mgr = RedirectManager.open({
    pinDir: lab.pinDir,
    cgroupRoot: lab.cgroupRoot,
    proxy: { ipv4: pod.nodeIpv4, port: 15001 },
    hostNetnsCookie: netnsCookie(lab.nodeNetnsPath),
    logger: silentLogger,
  });
  mgr.reconcile({ pods: [{ cgroupId: pod.cgroupId, uid: pod.uid, mode: 'PERMISSIVE' }], destinations: [{ ip: VIP, port: 80 }] });
  let misses = 0;
  let standInLooksUp = true;
  const m = mgr;
  servers.push(
    await listenInNetns(lab.nodeNetnsPath, pod.nodeIpv4, 15001, (s) => {
      if (!standInLooksUp) return;
      if (!m.lookup({ ip: s.remoteAddress!, port: s.remotePort! }, { ip: s.localAddress!, port: s.localPort! })) misses++;
      s.on('error', () => {});
      s.destroy();
    }),
    await listenInNetns(lab.nodeNetnsPath, pod.nodeIpv4, 8080, (s) => {
      s.on('error', () => {});
      s.destroy();
    }),
  );

  // warm up both paths (JIT, ARP/ND, page cache), then measure direct and redirected alternately
  await loop(VIP, 80);
  await loop(pod.nodeIpv4, 8080);
  const direct = await loop(pod.nodeIpv4, 8080);
  const redirected = await loop(VIP, 80);

  // cost of one lookup on the proxy's path: a connection whose record the stand-in does not consume
  // (its connection is kept open), looked up repeatedly with peek (same encode + one map syscall as lookup)
  standInLooksUp = false;
  const holder = spawnIn(pod.cgroupPath, pod.netnsPath, process.execPath, [client, 'hold', VIP, '80']);
  const held = JSON.parse(await new Promise<string>((r) => holder.stdout!.once('data', (d: Buffer) => r(d.toString())))) as { local: string; localPort: number };
  const peer = { ip: held.local, port: held.localPort };
  const local = { ip: pod.nodeIpv4, port: 15001 };
  const N = 200_000;
  let found = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) if (mgr.peek(peer, local)) found++;
  const lookupNs = Number(process.hrtime.bigint() - t0) / N;
  holder.kill('SIGKILL');

  const rate = (r: LoopResult) => Math.round(r.ok / r.seconds);
  const result = {
    connections,
    concurrency,
    direct: { connPerSec: rate(direct), p50us: Math.round(direct.p50), p99us: Math.round(direct.p99), failed: direct.failed },
    redirected: { connPerSec: rate(redirected), p50us: Math.round(redirected.p50), p99us: Math.round(redirected.p99), failed: redirected.failed, lookupMisses: misses },
    lookup: { nsPerCall: Math.round(lookupNs), found: found === N },
    counters: Object.fromEntries(Object.entries(mgr.readCounters()).map(([k, v]) => [k, Number(v)])),
  };
  if (json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else {
    process.stdout.write(`capture bench: ${connections} connections per path, concurrency ${concurrency} (connect latency in µs)\n`);
    process.stdout.write(`  direct      ${String(result.direct.connPerSec).padStart(7)} conn/s   p50 ${String(result.direct.p50us).padStart(5)}   p99 ${String(result.direct.p99us).padStart(5)}\n`);
    process.stdout.write(`  redirected  ${String(result.redirected.connPerSec).padStart(7)} conn/s   p50 ${String(result.redirected.p50us).padStart(5)}   p99 ${String(result.redirected.p99us).padStart(5)}   (proxy lookups missed: ${misses})\n`);
    process.stdout.write(`  RedirectManager.lookup: ${result.lookup.nsPerCall} ns per call${found === N ? '' : ' (NOT FOUND: the record was gone)'}\n`);
  }
} finally {
  for (const s of servers) await closeServer(s);
  mgr?.close();
  uninstallPins(lab.pinDir, silentLogger);
  lab.destroy();
}

