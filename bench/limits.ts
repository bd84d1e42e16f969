// Limits that hold (issue 15): what 10,000 idle keep-alive connections cost the node proxy, and whether
// 1,000 slow-header connections from one pod slow another pod's requests.
//
//   node dist/bench/limits.js [--idle 10000] [--slow 1000] [--requests 300] [--path local|tunnel]
//
// Three processes, as bench/tunnel.ts: this one plays the client pods, one runs both node proxies
// (test/proxy/fixtures/mesh.ts, real NodeProxy objects on loopback, the capture lookup faked), one the
// server pod (HTTP/1.1 keep-alive, answers "ok"). The proxies' process reports its RSS and heap (after a
// forced GC), so the figures are the proxy's own, not the load generator's.
//
// 1. idle: `--idle` connections, spread over 10 client pods (the per-source cap is 10,000), each sends one
//    request, reads the answer and stays open. RSS before, with all open (and 5 s later: it must not grow
//    while nothing happens), and after they close.
// 2. slow headers: pod "good" sends `--requests` sequential requests on one keep-alive connection, alone
//    and then while pod "evil" holds `--slow` connections that send a request head one byte a second and
//    never finish it (slowloris). The good pod's latency percentiles, side by side.
// Results: bench/results/limits-<date>.json.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const SELF = fileURLToPath(import.meta.url);
const RESULTS_DIR = join(process.cwd(), 'bench', 'results');
const VIP = '127.0.97.3';
const SERVER_A = '127.0.10.200';
const SERVER_B = '127.0.20.200';
const CLIENTS = Array.from({ length: 10 }, (_, i) => `127.0.10.${10 + i}`);
const GOOD = '127.0.10.2';
const EVIL = '127.0.10.3';

interface Memory {
  rss: number;
  heapUsed: number;
  fds: number;
}
type Msg = { port?: number; outbound?: { host: string; port: number }; memory?: Memory };

function ask(child: ChildProcess, msg: unknown): Promise<Msg> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as Msg));
    child.send(msg as never);
  });
}

// ---- role: the server pod ----------------------------------------------------------------------------
async function serverRole(ip: string): Promise<void> {
  const server = http.createServer({ keepAliveTimeout: 10 * 60_000 }, (req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  await new Promise<void>((r) => server.listen(0, ip, r));
  process.send!({ port: (server.address() as net.AddressInfo).port });
}

// ---- role: both node proxies -------------------------------------------------------------------------
async function meshRole(port: number, local: boolean): Promise<void> {
  const { startMesh } = await import('../test/proxy/fixtures/mesh.js');
  const pods = [
    ...CLIENTS.map((ip, i) => ({ name: `client-${i}`, node: 'node-a' as const, ip })),
    { name: 'good', node: 'node-a' as const, ip: GOOD },
    { name: 'evil', node: 'node-a' as const, ip: EVIL },
    { name: 'server', node: local ? ('node-a' as const) : ('node-b' as const), ip: local ? SERVER_A : SERVER_B },
  ];
  const mesh = await startMesh(pods, [{ name: 'server', vip: VIP, port: 80, targetPort: port, pods: ['server'], appProtocol: 'http' }], { limits: { idleTimeoutMs: 10 * 60_000, keepAliveTimeoutMs: 10 * 60_000 } });
  for (const p of pods) if (p.name !== 'server') mesh.route(p.name, VIP, 80);
  process.on('message', (m: { memory?: boolean; exit?: boolean }) => {
    if (m.memory) {
      (globalThis as { gc?: () => void }).gc?.();
      const u = process.memoryUsage();
      const fds = readdirSync('/proc/self/fd').length;
      process.send!({ memory: { rss: u.rss, heapUsed: u.heapUsed, fds } });
    } else if (m.exit) void mesh.close().then(() => process.exit(0));
  });
  process.send!({ outbound: mesh.a.outbound });
}

// ---- the client pods ---------------------------------------------------------------------------------
/** One keep-alive connection from `ip` that sent one request and read its answer; left open. */
function idleConnection(outbound: { host: string; port: number }, ip: string, i: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: outbound.host, port: outbound.port, localAddress: ip });
    let got = '';
    s.setEncoding('latin1');
    s.once('error', reject);
    s.once('connect', () => s.write(`GET /idle/${i} HTTP/1.1\r\nHost: server\r\n\r\n`));
    const onData = (d: string) => {
      got += d;
      if (got.includes('\r\n\r\n') && got.endsWith('ok')) {
        s.off('data', onData);
        resolve(s);
      }
    };
    s.on('data', onData);
  });
}

/** Sequential requests on one keep-alive connection; each request's latency in ms. */
async function timedRequests(outbound: { host: string; port: number }, ip: string, n: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const out: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        const req = http.request({ host: outbound.host, port: outbound.port, localAddress: ip, agent, path: `/good/${i}`, headers: { host: 'server' } }, (res) => {
          res.resume();
          res.on('end', () => resolve());
        });
        req.on('error', reject);
        req.end();
      });
      out.push(performance.now() - t0);
    }
  } finally {
    agent.destroy();
  }
  return out;
}

/** A slowloris connection: a request head one byte a second, never finished. */
function slowConnection(outbound: { host: string; port: number }, ip: string, timers: NodeJS.Timeout[]): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: outbound.host, port: outbound.port, localAddress: ip });
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      s.on('error', () => {});
      s.write('GET /slow HTTP/1.1\r\nHost: server\r\nX-Slow: ');
      timers.push(setInterval(() => s.writable && s.write('a'), 1000));
      resolve(s);
    });
  });
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const mb = (b: number) => (b / 2 ** 20).toFixed(1);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      idle: { type: 'string', default: '10000' },
      slow: { type: 'string', default: '1000' },
      requests: { type: 'string', default: '300' },
      path: { type: 'string', default: 'local' },
      role: { type: 'string' },
      port: { type: 'string' },
    },
  });
  const local = values.path === 'local';
  if (values.path !== 'local' && values.path !== 'tunnel') throw new Error(`--path: local or tunnel, not ${values.path}`);
  if (values.role === 'server') return serverRole(local ? SERVER_A : SERVER_B);
  if (values.role === 'mesh') return meshRole(Number(values.port), local);

  const idleN = Number(values.idle);
  const slowN = Number(values.slow);
  const server = fork(SELF, ['--role', 'server', '--path', values.path!], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { port } = await new Promise<Msg>((r) => server.once('message', (m) => r(m as Msg)));
  const mesh = fork(SELF, ['--role', 'mesh', '--port', String(port), '--path', values.path!], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--expose-gc'] });
  const { outbound } = await new Promise<Msg>((r) => mesh.once('message', (m) => r(m as Msg)));
  const memory = async () => (await ask(mesh, { memory: true })).memory!;
  const result: Record<string, unknown> = { at: new Date().toISOString(), path: values.path, node: process.version };
  try {
    // warm-up: pools, the tunnel's TLS session, JIT
    await timedRequests(outbound!, GOOD, 50);
    const base = await memory();

    // 1. idle connections
    const held: net.Socket[] = [];
    const t0 = performance.now();
    for (let i = 0; i < idleN; i += 200) {
      const batch = Array.from({ length: Math.min(200, idleN - i) }, (_, k) => idleConnection(outbound!, CLIENTS[(i + k) % CLIENTS.length]!, i + k));
      held.push(...(await Promise.all(batch)));
    }
    const openMs = performance.now() - t0;
    const open = await memory();
    await new Promise((r) => setTimeout(r, 5000));
    const later = await memory();
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 2000));
    const closed = await memory();
    const idle = {
      connections: idleN,
      openSeconds: openMs / 1000,
      rssBaseMiB: Number(mb(base.rss)),
      rssOpenMiB: Number(mb(open.rss)),
      rss5sLaterMiB: Number(mb(later.rss)),
      rssClosedMiB: Number(mb(closed.rss)),
      heapOpenMiB: Number(mb(open.heapUsed)),
      heapClosedMiB: Number(mb(closed.heapUsed)),
      kibPerConnection: Math.round((open.rss - base.rss) / 1024 / idleN * 10) / 10,
      proxyFdsOpen: open.fds,
    };
    result['idle'] = idle;
    process.stderr.write(`idle: ${idleN} connections open in ${idle.openSeconds.toFixed(1)} s; proxy RSS ${idle.rssBaseMiB} → ${idle.rssOpenMiB} MiB (${idle.kibPerConnection} KiB each), 5 s later ${idle.rss5sLaterMiB}, closed ${idle.rssClosedMiB}; heap ${idle.heapOpenMiB} → ${idle.heapClosedMiB} MiB\n`);

    // 2. slow headers from one pod, requests from another
    const n = Number(values.requests);
    const alone = await timedRequests(outbound!, GOOD, n);
    const timers: NodeJS.Timeout[] = [];
    const slow: net.Socket[] = [];
    for (let i = 0; i < slowN; i += 100) slow.push(...(await Promise.all(Array.from({ length: Math.min(100, slowN - i) }, () => slowConnection(outbound!, EVIL, timers)))));
    await new Promise((r) => setTimeout(r, 2000));
    const beside = await timedRequests(outbound!, GOOD, n);
    const stillOpen = slow.filter((s) => !s.destroyed).length;
    for (const t of timers) clearInterval(t);
    for (const s of slow) s.destroy();
    const row = (xs: number[]) => ({ p50: Math.round(pct(xs, 50) * 100) / 100, p90: Math.round(pct(xs, 90) * 100) / 100, p99: Math.round(pct(xs, 99) * 100) / 100, max: Math.round(Math.max(...xs) * 100) / 100 });
    result['slowHeaders'] = { slowConnections: slowN, stillOpenWhileMeasuring: stillOpen, requests: n, aloneMs: row(alone), besideSlowMs: row(beside) };
    process.stderr.write(`slow headers: good pod alone p50 ${row(alone).p50} ms p99 ${row(alone).p99} ms; beside ${slowN} slowloris connections (${stillOpen} still open) p50 ${row(beside).p50} ms p99 ${row(beside).p99} ms\n`);
  } finally {
    mesh.send({ exit: true });
    await new Promise((r) => mesh.once('exit', r));
    server.kill();
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `limits-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(JSON.stringify(result) + '\n');
  process.stderr.write(`written ${file}\n`);
}

await main();
