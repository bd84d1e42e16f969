// In-process-ish benchmark of the node proxy alone (no eBPF, no namespaces): added latency at a fixed
// open-loop rate and the proxy's CPU per request, for a direct connection, a same-node delivery and a
// cross-node delivery through the mTLS tunnel, all in the same run.
//
//   node dist/bench/proxy.js [--rate 1000] [--seconds 5] [--warmup 1] [--connections 16] [--reps 2] [--profile DIR]
//                            [--tracing off,1,100]
//
// Three processes so the numbers are the proxy's own: this one generates load (bench/load/open-loop.ts,
// no coordinated omission), one runs the upstream HTTP servers ("pods" on 127.0.10.2 and 127.0.20.2),
// one runs both node proxies (node-a and node-b of test/proxy/fixtures/mesh.ts, tunnel between them on
// loopback). CPU µs/request is the proxies' process CPU time over the responses it carried: for the
// cross-node path that is source and destination proxy together. --profile runs the proxy process with
// --cpu-prof and prints the functions with the most self time. --tracing runs one proxies' process per
// setting (off, or a sampling percentage with spans exported over OTLP/HTTP to a sink in the upstream
// process that reads and drops them), and every path through each, interleaved: the cost of tracing is
// the difference between rows of the same run.
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { cpus, loadavg } from 'node:os';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openLoop, type OpenLoopResult } from './load/open-loop.js';

const SELF = fileURLToPath(import.meta.url);
const POD_A = '127.0.10.2';
const POD_B = '127.0.20.2';
const VIP_LOCAL = '127.0.97.1';
const VIP_REMOTE = '127.0.97.2';

type Msg = { port?: number; otlp?: number; outbound?: { host: string; port: number }; cpu?: NodeJS.CpuUsage; rss?: number; ok?: boolean; spans?: Record<string, number> };

function request(child: ChildProcess, msg: unknown): Promise<Msg> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as Msg));
    child.send(msg as never);
  });
}

// ---- role: upstream pods ---------------------------------------------------------------------------
async function upstreamRole(): Promise<void> {
  const body = Buffer.from('ok\n');
  const handler = (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  };
  const a = http.createServer(handler);
  const b = http.createServer(handler);
  a.keepAliveTimeout = b.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => a.listen(0, POD_A, r));
  const port = (a.address() as { port: number }).port;
  await new Promise<void>((r) => b.listen(port, POD_B, r));
  // an OTLP/HTTP collector stand-in for --tracing: reads each export and accepts it
  const otlp = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
  });
  await new Promise<void>((r) => otlp.listen(0, '127.0.0.1', r));
  process.send!({ port, otlp: (otlp.address() as { port: number }).port });
}

// ---- role: the two node proxies --------------------------------------------------------------------
async function meshRole(port: number, tracePercent: number | undefined, collector: string): Promise<void> {
  const { startMesh } = await import('../test/proxy/fixtures/mesh.js');
  const spans: Record<string, number> = {};
  const tracing =
    tracePercent === undefined
      ? undefined
      : await (async () => {
          const { ProxyTracing } = await import('../agent/observe/tracing.js');
          const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
          return (_node: string, state: import('../agent/state/mesh-state.js').MeshState) =>
            new ProxyTracing({ state, sampling: tracePercent / 100, exporter: new OTLPTraceExporter({ url: collector }), count: (r, n) => (spans[r] = (spans[r] ?? 0) + n) });
        })();
  const mesh = await startMesh(
    [
      { name: 'client', node: 'node-a', ip: '127.0.0.1' },
      { name: 'web-a', node: 'node-a', ip: POD_A, sa: 'web' },
      { name: 'web-b', node: 'node-b', ip: POD_B, sa: 'web' },
    ],
    [
      { name: 'web-local', vip: VIP_LOCAL, port: 80, targetPort: port, pods: ['web-a'] },
      { name: 'web-remote', vip: VIP_REMOTE, port: 80, targetPort: port, pods: ['web-b'] },
    ],
    tracing ? { tracing } : {},
  );
  process.on('message', (m: { route?: string; cpu?: boolean; exit?: boolean }) => {
    if (m.route) {
      // The load generator connects from 127.0.0.1: the fake capture says those connections were for m.route.
      mesh.lookup.routes.set('127.0.0.1', { ip: m.route, port: 80, family: 4, cgroupId: mesh.cgroupOf('client') });
      process.send!({ ok: true });
    } else if (m.cpu) process.send!({ cpu: process.cpuUsage(), rss: process.memoryUsage.rss(), spans });
    else if (m.exit) void mesh.close().then(() => process.exit(0));
  });
  process.send!({ outbound: mesh.a.outbound });
}

// ---- the generator -----------------------------------------------------------------------------------
interface Row {
  path: string;
  rep: number;
  result: OpenLoopResult;
  cpuUsPerRequest: number | undefined;
  /** share of that CPU spent in the kernel (on loopback the sender's syscall also runs the receiver's TCP) */
  sysShare: number | undefined;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '1000' },
      seconds: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      connections: { type: 'string', default: '16' },
      reps: { type: 'string', default: '2' },
      profile: { type: 'string' },
      role: { type: 'string' },
      port: { type: 'string' },
      tracing: { type: 'string' },
      trace: { type: 'string' },
      collector: { type: 'string' },
    },
  });
  if (values.role === 'upstream') return upstreamRole();
  if (values.role === 'mesh') return meshRole(Number(values.port), values.trace === undefined ? undefined : Number(values.trace), values.collector ?? '');

  const rate = Number(values.rate);
  const durationMs = Number(values.seconds) * 1000;
  const warmupMs = Number(values.warmup) * 1000;
  const connections = Number(values.connections);
  const reps = Number(values.reps);

  const upstream = fork(SELF, ['--role', 'upstream'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { port, otlp } = await new Promise<Msg>((r) => upstream.once('message', (m) => r(m as Msg)));
  const execArgv = values.profile ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] : [];
  // one proxies' process per tracing setting (default: one, tracing off, named as before)
  const settings = values.tracing === undefined ? [undefined] : values.tracing.split(',').map((x) => (x === 'off' ? undefined : Number(x)));
  for (const x of settings) if (x !== undefined && !(x >= 0 && x <= 100)) throw new Error(`--tracing: "${values.tracing}" is not a list of off and percentages`);
  const meshes: Array<{ proc: ChildProcess; outbound: { host: string; port: number }; suffix: string; rssMax: number }> = [];
  for (const pct of settings) {
    const trace = pct === undefined ? [] : ['--trace', String(pct), '--collector', `http://127.0.0.1:${otlp}/v1/traces`];
    const proc = fork(SELF, ['--role', 'mesh', '--port', String(port), ...trace], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
    const { outbound } = await new Promise<Msg>((r) => proc.once('message', (m) => r(m as Msg)));
    meshes.push({ proc, outbound: outbound!, suffix: values.tracing === undefined ? '' : pct === undefined ? ' tracing off' : ` tracing ${pct}%`, rssMax: 0 });
  }

  const paths: Array<{ path: string; target: { host: string; port: number; path: string }; route: string | undefined; mesh: (typeof meshes)[number] | undefined }> = [
    { path: 'direct', target: { host: POD_A, port: port!, path: '/' }, route: undefined, mesh: undefined },
  ];
  for (const [name, route] of [['same-node', VIP_LOCAL], ['cross-node', VIP_REMOTE]] as const) {
    for (const m of meshes) paths.push({ path: `${name}${m.suffix}`, target: { host: m.outbound.host, port: m.outbound.port, path: '/' }, route, mesh: m });
  }
  const rows: Row[] = [];
  const rssIdle = (await request(meshes[0]!.proc, { cpu: true })).rss!;
  let rssMax = rssIdle;
  try {
    // Interleaved repetitions, so a slow moment of the machine does not land on one path only.
    for (let rep = 1; rep <= reps; rep++) {
      for (const p of paths) {
        const m = p.mesh ?? meshes[0]!;
        const mesh = m.proc;
        if (p.route) await request(mesh, { route: p.route });
        const before = (await request(mesh, { cpu: true })).cpu!;
        const result = await openLoop({ target: p.target, rate, connections, durationMs, warmupMs });
        const reply = await request(mesh, { cpu: true });
        const after = reply.cpu!;
        rssMax = Math.max(rssMax, reply.rss!);
        m.rssMax = Math.max(m.rssMax, reply.rss!);
        const cpuUs = after.user + after.system - (before.user + before.system);
        const sysShare = cpuUs > 0 ? (after.system - before.system) / cpuUs : 0;
        rows.push({ path: p.path, rep, result, cpuUsPerRequest: p.route ? cpuUs / Math.max(1, result.completedTotal) : undefined, sysShare: p.route ? sysShare : undefined });
        process.stderr.write(`${p.path} rep ${rep}: p50 ${result.latencyUs.p50} µs p99 ${result.latencyUs.p99} µs, ${result.rps.toFixed(0)} rps, errors ${result.errors + result.badStatus}\n`);
      }
    }
    for (const m of meshes) if (m.suffix.includes('%')) process.stderr.write(`spans${m.suffix}: ${JSON.stringify((await request(m.proc, { cpu: true })).spans)}\n`);
  } finally {
    for (const m of meshes) {
      m.proc.send({ exit: true });
      await new Promise((r) => m.proc.once('exit', r));
    }
    upstream.kill();
  }

  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  const summary = paths.map((p) => {
    const rs = rows.filter((r) => r.path === p.path);
    const pick = (k: 'p50' | 'p90' | 'p99') => med(rs.map((r) => r.result.latencyUs[k]));
    return {
      path: p.path,
      p50: pick('p50'),
      p90: pick('p90'),
      p99: pick('p99'),
      rps: med(rs.map((r) => r.result.rps)),
      errors: rs.reduce((a, r) => a + r.result.errors + r.result.badStatus, 0),
      cpuUsPerRequest: p.route ? med(rs.map((r) => r.cpuUsPerRequest!)) : undefined,
      kernelShare: p.route ? med(rs.map((r) => r.sysShare!)) : undefined,
    };
  });
  const direct = summary[0]!;
  process.stdout.write(`\nnode proxy, HTTP/1.1 keep-alive, open loop ${rate} rps, ${connections} connections, ${values.seconds}s x ${reps} (median)\n`);
  process.stdout.write(`${"path".padEnd(settings.length > 1 ? 26 : 12)} p50 µs  p90 µs  p99 µs   added p50/p90/p99 µs    proxy CPU µs/req (kernel)  errors\n`);
  for (const s of summary) {
    const added = s.path === 'direct' ? '-' : `${s.p50 - direct.p50}/${s.p90 - direct.p90}/${s.p99 - direct.p99}`;
    process.stdout.write(`${s.path.padEnd(settings.length > 1 ? 26 : 12)} ${String(s.p50).padStart(6)}  ${String(s.p90).padStart(6)}  ${String(s.p99).padStart(6)}   ${added.padEnd(22)}  ${s.cpuUsPerRequest === undefined ? '-'.padStart(16) : `${s.cpuUsPerRequest.toFixed(0)} (${Math.round(100 * s.kernelShare!)}%)`.padStart(16)}           ${s.errors}\n`);
  }
  process.stdout.write(`proxies' process (both nodes) RSS: ${(rssIdle / 1048576).toFixed(1)} MB idle, ${(rssMax / 1048576).toFixed(1)} MB max after a run (${process.version})\n`);
  if (meshes.length > 1) for (const m of meshes) process.stdout.write(`  RSS max after a run,${m.suffix}: ${(m.rssMax / 1048576).toFixed(1)} MB\n`);
  const [l1, l5] = loadavg();
  process.stdout.write(`machine load average ${l1!.toFixed(1)} / ${l5!.toFixed(1)} on ${cpus().length} CPUs during the run\n`);
  process.stdout.write(JSON.stringify({ node: process.version, rate, connections, seconds: Number(values.seconds), reps, loadavg: [l1, l5], rssIdleBytes: rssIdle, rssMaxBytes: rssMax, summary }) + '\n');
  if (values.profile) {
    await new Promise((r) => setTimeout(r, 500));
    printProfile(values.profile);
  }
}

/** Top self-time functions of the newest .cpuprofile in `dir`. */
function printProfile(dir: string): void {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  const file = files[files.length - 1];
  if (!file) return void process.stdout.write(`no .cpuprofile in ${dir}\n`);
  const prof = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
    samples: number[];
  };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  for (const s of prof.samples) {
    const n = byId.get(s)!;
    const url = n.callFrame.url.replace(/^.*\/(node_modules|dist)\//, '$1/');
    const key = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + 1);
  }
  const total = prof.samples.length;
  process.stdout.write(`\nproxy CPU profile ${join(dir, file)}: top self time (${total} samples)\n`);
  for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15)) process.stdout.write(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/proxy failed: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exitCode = 1;
});
