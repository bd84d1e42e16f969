// What TrafficPolicy costs per request (issue 13): the node proxy's CPU per request and the added latency
// for the same same-node HTTP/1.1 path with no policy and with every TrafficPolicy feature set (least
// request balancing, connection pool limits, outlier detection, a local rate limit, fault injection at a
// tiny percentage, a fallback), none of which trips at this load, so the row is the bookkeeping's cost.
//
//   node dist/bench/traffic.js [--rate 1000] [--seconds 5] [--warmup 1] [--connections 16] [--reps 3]
//
// Same three-process layout as bench/proxy.ts (load generator, upstream pod, node proxies); repetitions of
// the two paths are interleaved so a noisy moment of the machine hits both.
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openLoop, type OpenLoopResult } from './load/open-loop.js';

const SELF = fileURLToPath(import.meta.url);
const POD_A = '127.0.10.2';
const VIP_PLAIN = '127.0.97.1';
const VIP_POLICY = '127.0.97.3';

type Msg = { port?: number; outbound?: { host: string; port: number }; cpu?: NodeJS.CpuUsage; ok?: boolean };

function request(child: ChildProcess, msg: unknown): Promise<Msg> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as Msg));
    child.send(msg as never);
  });
}

async function upstreamRole(): Promise<void> {
  const body = Buffer.from('ok\n');
  const a = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
  a.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => a.listen(0, POD_A, r));
  process.send!({ port: (a.address() as { port: number }).port });
}

async function meshRole(port: number): Promise<void> {
  const { startMesh } = await import('../test/proxy/fixtures/mesh.js');
  const { compileTrafficSpec } = await import('../controller/translate/policy/traffic.js');
  const mesh = await startMesh(
    [
      { name: 'client', node: 'node-a', ip: '127.0.0.1' },
      { name: 'web-a', node: 'node-a', ip: POD_A, sa: 'web' },
    ],
    [
      { name: 'web-plain', vip: VIP_PLAIN, port: 80, targetPort: port, pods: ['web-a'] },
      { name: 'web-policy', vip: VIP_POLICY, port: 80, targetPort: port, pods: ['web-a'] },
    ],
  );
  const traffic = compileTrafficSpec(
    {
      targetRef: { kind: 'Service', name: 'web-policy' },
      loadBalancer: { simple: 'LEAST_REQUEST' },
      connectionPool: { tcp: { maxConnections: 100_000 }, http: { http2MaxRequests: 100_000, maxRetries: 100 } },
      outlierDetection: { consecutive5xxErrors: 5, consecutiveGatewayErrors: 3, interval: '1s', baseEjectionTime: '30s', maxEjectionPercent: 50 },
      rateLimit: { requestsPerSecond: 1_000_000, burst: 1_000_000 },
      fault: { delay: { fixedDelay: '1ms', percentage: { value: 0.0001 } }, abort: { httpStatus: 503, percentage: { value: 0.0001 } } },
      fallback: { response: { status: 200, body: 'generic' } },
    },
    'default',
    0,
    { trustDomain: 'cluster.local', rootNamespace: 'weft-system', workloads: [], services: mesh.config.services },
  );
  const cfg = { ...mesh.config, version: 2, policies: [{ kind: 'TrafficPolicy' as const, key: 'TrafficPolicy/default/web-policy', namespace: 'default', name: 'web-policy', traffic }] };
  mesh.a.state.update(cfg);
  mesh.b.state.update(cfg);
  process.on('message', (m: { route?: string; cpu?: boolean; exit?: boolean }) => {
    if (m.route) {
      mesh.lookup.routes.set('127.0.0.1', { ip: m.route, port: 80, family: 4, cgroupId: mesh.cgroupOf('client') });
      process.send!({ ok: true });
    } else if (m.cpu) process.send!({ cpu: process.cpuUsage() });
    else if (m.exit) void mesh.close().then(() => process.exit(0));
  });
  process.send!({ outbound: mesh.a.outbound });
}

interface Row {
  path: string;
  result: OpenLoopResult;
  cpuUsPerRequest: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '1000' },
      seconds: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      connections: { type: 'string', default: '16' },
      reps: { type: 'string', default: '3' },
      role: { type: 'string' },
      port: { type: 'string' },
    },
  });
  if (values.role === 'upstream') return upstreamRole();
  if (values.role === 'mesh') return meshRole(Number(values.port));
  const rate = Number(values.rate);
  const connections = Number(values.connections);
  const reps = Number(values.reps);
  const upstream = fork(SELF, ['--role', 'upstream'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { port } = await new Promise<Msg>((r) => upstream.once('message', (m) => r(m as Msg)));
  const mesh = fork(SELF, ['--role', 'mesh', '--port', String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { outbound } = await new Promise<Msg>((r) => mesh.once('message', (m) => r(m as Msg)));
  const paths = [
    { path: 'no policy', route: VIP_PLAIN },
    { path: 'every policy', route: VIP_POLICY },
  ];
  const rows: Row[] = [];
  try {
    for (let rep = 1; rep <= reps; rep++) {
      for (const p of rep % 2 ? paths : [...paths].reverse()) {
        await request(mesh, { route: p.route });
        const before = (await request(mesh, { cpu: true })).cpu!;
        const result = await openLoop({ target: { host: outbound!.host, port: outbound!.port, path: '/' }, rate, connections, durationMs: Number(values.seconds) * 1000, warmupMs: Number(values.warmup) * 1000 });
        const after = (await request(mesh, { cpu: true })).cpu!;
        const cpuUs = after.user + after.system - (before.user + before.system);
        rows.push({ path: p.path, result, cpuUsPerRequest: cpuUs / Math.max(1, result.completedTotal) });
        process.stderr.write(`${p.path} rep ${rep}: p50 ${result.latencyUs.p50} µs p99 ${result.latencyUs.p99} µs, ${result.rps.toFixed(0)} rps, ${(cpuUs / Math.max(1, result.completedTotal)).toFixed(0)} µs CPU/req, errors ${result.errors + result.badStatus}\n`);
      }
    }
  } finally {
    mesh.send({ exit: true });
    await new Promise((r) => mesh.once('exit', r));
    upstream.kill();
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  const summary = paths.map((p) => {
    const rs = rows.filter((r) => r.path === p.path);
    return {
      path: p.path,
      p50: med(rs.map((r) => r.result.latencyUs.p50)),
      p99: med(rs.map((r) => r.result.latencyUs.p99)),
      cpuUsPerRequest: med(rs.map((r) => r.cpuUsPerRequest)),
      cpuMin: Math.min(...rs.map((r) => r.cpuUsPerRequest)),
      cpuMax: Math.max(...rs.map((r) => r.cpuUsPerRequest)),
      errors: rs.reduce((a, r) => a + r.result.errors + r.result.badStatus, 0),
    };
  });
  process.stdout.write(`\nTrafficPolicy cost, same node, HTTP/1.1 keep-alive, open loop ${rate} rps, ${connections} connections, ${values.seconds}s x ${reps} interleaved (median, min-max)\n`);
  process.stdout.write('path           p50 µs  p99 µs   proxy CPU µs/req        errors\n');
  for (const s of summary) process.stdout.write(`${s.path.padEnd(14)} ${String(s.p50).padStart(6)}  ${String(s.p99).padStart(6)}   ${`${s.cpuUsPerRequest.toFixed(0)} (${s.cpuMin.toFixed(0)}-${s.cpuMax.toFixed(0)})`.padEnd(22)}  ${s.errors}\n`);
  process.stdout.write(`every policy minus none: ${(summary[1]!.cpuUsPerRequest - summary[0]!.cpuUsPerRequest).toFixed(0)} µs CPU per request\n`);
  const [l1, l5] = loadavg();
  process.stdout.write(`machine load average ${l1!.toFixed(1)} / ${l5!.toFixed(1)} on ${cpus().length} CPUs during the run\n`);
  process.stdout.write(JSON.stringify({ rate, connections, seconds: Number(values.seconds), reps, loadavg: [l1, l5], summary }) + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/traffic failed: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exitCode = 1;
});
