// Benchmark of capture alone: connections per second and connect latency (p50/p99) from a pod stand-in
// (netns + cgroup) to one listener in the node namespace, three ways, interleaved round by round:
//   direct    the pod connects to the listener's address itself (no capture)
//   ebpf      the pod connects to a mesh VIP; connect4 rewrites it to the stand-in node proxy, which looks
//             every connection up (RedirectManager.lookup), as the real proxy does
//   iptables  the pod connects to another VIP; an iptables DNAT rule in the pod's namespace sends it to the
//             listener (the classic capture; the listener does no original-destination lookup)
// plus the cost of one lookup. Prints a table, or one JSON line with --json (bench/capture-runner.ts
// reads it: keys `ebpf` and `iptables` with connectsPerSecond per round, p50, p99 in µs).
//
//   node dist/bench/capture.js [--connections 5000] [--concurrency 16] [--rounds 3] [--quick] [--json]
//
// Needs root (namespaces, cgroups, eBPF, iptables inside the pod namespace). Everything it creates is
// removed at exit.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type net from 'node:net';

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

interface MethodResult {
  connectsPerSecond: number[];
  /** median over rounds of each round's p50 / p99 connect latency, µs */
  p50: number;
  p99: number;
  failed: number;
}

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i > 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : dflt;
}

const quick = process.argv.includes('--quick');
const connections = arg('connections', quick ? 1000 : 5000);
const concurrency = arg('concurrency', 16);
const rounds = arg('rounds', quick ? 1 : 3);
const json = process.argv.includes('--json');
const client = fileURLToPath(new URL('../test/helpers/capture-client.js', import.meta.url));
const VIP_EBPF = '10.97.3.30';
const VIP_IPTABLES = '10.97.3.31';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

const lab = createLab('bench', 1);
const pod = lab.pods[0]!;
let mgr: RedirectManager | undefined;
const servers: net.Server[] = [];

async function loop(host: string, port: number): Promise<LoopResult> {
  const r = await runIn(pod.cgroupPath, pod.netnsPath, process.execPath, [client, 'loop', host, String(port), String(connections), String(concurrency)], 300_000);
  if (r.code !== 0) throw new Error(`client failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as LoopResult;
}

function summarize(rs: LoopResult[]): MethodResult {
  return {
    connectsPerSecond: rs.map((r) => Math.round(r.ok / r.seconds)),
    p50: Math.round(median(rs.map((r) => r.p50))),
    p99: Math.round(median(rs.map((r) => r.p99))),
    failed: rs.reduce((a, r) => a + r.failed, 0),
  };
}

try {
  mgr = RedirectManager.open({
    pinDir: lab.pinDir,
    cgroupRoot: lab.cgroupRoot,
    proxy: { ipv4: pod.nodeIpv4, port: 15001 },
    hostNetnsCookie: netnsCookie(lab.nodeNetnsPath),
    logger: silentLogger,
  });
  mgr.reconcile({ pods: [{ cgroupId: pod.cgroupId, uid: pod.uid, mode: 'PERMISSIVE' }], destinations: [{ ip: VIP_EBPF, port: 80 }] });
  // only inside the pod's own namespace, which this benchmark created
  execFileSync('nsenter', [`--net=${pod.netnsPath}`, '--', 'iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', VIP_IPTABLES, '--dport', '80', '-j', 'DNAT', '--to-destination', `${pod.nodeIpv4}:8080`]);
  // iptables needs a route to the VIP before NAT can run; capture does not (it rewrites before routing)
  execFileSync('ip', ['-n', pod.netns, 'route', 'add', `${VIP_IPTABLES}/32`, 'via', pod.nodeIpv4]);

  let misses = 0;
  let standInLooksUp = true;
  const m = mgr;
  servers.push(
    await listenInNetns(lab.nodeNetnsPath, pod.nodeIpv4, 15001, (s) => {
      s.on('error', () => {});
      if (!standInLooksUp) return;
      if (!m.lookup({ ip: s.remoteAddress!, port: s.remotePort! }, { ip: s.localAddress!, port: s.localPort! })) misses++;
      s.destroy();
    }),
    await listenInNetns(lab.nodeNetnsPath, pod.nodeIpv4, 8080, (s) => {
      s.on('error', () => {});
      s.destroy();
    }),
  );

  // warm up every path (JIT, neighbour tables), then interleave the methods round by round
  const paths = { direct: [pod.nodeIpv4, 8080], ebpf: [VIP_EBPF, 80], iptables: [VIP_IPTABLES, 80] } as const;
  for (const [h, p] of Object.values(paths)) await loop(h, p);
  const raw: Record<keyof typeof paths, LoopResult[]> = { direct: [], ebpf: [], iptables: [] };
  for (let i = 0; i < rounds; i++) {
    for (const [name, [h, p]] of Object.entries(paths) as Array<[keyof typeof paths, readonly [string, number]]>) raw[name].push(await loop(h, p));
  }

  // cost of one lookup: a redirected connection kept open, its record peeked repeatedly (same encode and
  // one map syscall as lookup, without consuming it)
  standInLooksUp = false;
  const holder = spawnIn(pod.cgroupPath, pod.netnsPath, process.execPath, [client, 'hold', VIP_EBPF, '80']);
  const held = JSON.parse(await new Promise<string>((r) => holder.stdout!.once('data', (d: Buffer) => r(d.toString())))) as { local: string; localPort: number };
  const peer = { ip: held.local, port: held.localPort };
  const local = { ip: pod.nodeIpv4, port: 15001 };
  const N = quick ? 50_000 : 200_000;
  let found = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) if (mgr.peek(peer, local)) found++;
  const lookupNs = Number(process.hrtime.bigint() - t0) / N;
  holder.kill('SIGKILL');

  const result = {
    connections,
    concurrency,
    rounds,
    direct: summarize(raw.direct),
    ebpf: { ...summarize(raw.ebpf), proxyLookupMisses: misses },
    iptables: { ...summarize(raw.iptables), method: 'DNAT in the pod namespace to the same kind of listener' },
    lookup: { nsPerCall: Math.round(lookupNs), found: found === N },
    counters: Object.fromEntries(Object.entries(mgr.readCounters()).map(([k, v]) => [k, Number(v)])),
    loadAverage: (await import('node:os')).loadavg().map((x) => Math.round(x * 100) / 100),
  };
  if (json) process.stdout.write(JSON.stringify(result) + '\n');
  else {
    const row = (name: string, r: MethodResult) =>
      `  ${name.padEnd(10)} ${String(median(r.connectsPerSecond)).padStart(7)} conn/s (rounds: ${r.connectsPerSecond.join(', ')})   p50 ${String(r.p50).padStart(6)} µs   p99 ${String(r.p99).padStart(6)} µs${r.failed ? `   FAILED ${r.failed}` : ''}\n`;
    process.stdout.write(`capture bench: ${connections} connections per path and round, ${rounds} rounds, concurrency ${concurrency}, load average ${result.loadAverage.join(' ')}\n`);
    process.stdout.write(row('direct', result.direct) + row('ebpf', result.ebpf) + row('iptables', result.iptables));
    process.stdout.write(`  proxy lookups missed: ${misses}; RedirectManager.lookup: ${result.lookup.nsPerCall} ns per call${found === N ? '' : ' (NOT FOUND)'}\n`);
  }
} finally {
  for (const s of servers) await closeServer(s);
  mgr?.close();
  uninstallPins(lab.pinDir, silentLogger);
  lab.destroy();
}
