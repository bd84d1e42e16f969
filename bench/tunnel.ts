// One TCP stream through the mTLS tunnel (node-a proxy → HTTP/2 CONNECT over TLS 1.3 → node-b proxy → pod),
// the 100 MB transfer of the e2e test, on loopback without eBPF or namespaces; with --path local, through
// the same-node plaintext relay instead (node-a proxy → pod on node-a: what kernel splicing would replace):
//
//   node dist/bench/tunnel.js [--mb 100] [--reps 3] [--direction up|down|both] [--path tunnel|local]
//                             [--stream-window BYTES] [--connection-window BYTES] [--frame-size BYTES]
//
// Three processes: this one is the client pod, one runs both node proxies (test/proxy/fixtures/mesh.ts),
// one the server pod (a sink that answers with the byte count after the client's FIN, or a source that
// sends N MB). Reports MB/s per transfer and the proxies' CPU seconds per GB (both proxies together: on a
// real cross-node path each node pays its half). The window/frame flags override the proxy's limits, to
// compare settings in one run.
import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const SELF = fileURLToPath(import.meta.url);
const POD_B = '127.0.20.2';
const POD_A = '127.0.10.2';
const CLIENT = '127.0.10.1';
const VIP = '127.0.97.2';

type Msg = { port?: number; outbound?: { host: string; port: number }; cpu?: NodeJS.CpuUsage };

function ask(child: ChildProcess, msg: unknown): Promise<Msg> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as Msg));
    child.send(msg as never);
  });
}

// ---- role: the server pod --------------------------------------------------------------------------
async function serverRole(mb: number, ip: string): Promise<void> {
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.once('data', (first: Buffer) => {
      if (first[0] === 0x01 /* a byte no protocol sniffer claims: download */) {
        let left = mb;
        const pump = () => {
          while (left > 0) {
            left--;
            if (!s.write(chunk)) return void s.once('drain', pump);
          }
          s.end();
        };
        return pump();
      }
      let n = first.length;
      s.on('data', (d: Buffer) => (n += d.length));
      s.on('end', () => s.end(String(n)));
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, ip, r));
  process.send!({ port: (server.address() as net.AddressInfo).port });
}

// ---- role: both node proxies -------------------------------------------------------------------------
async function meshRole(port: number, limits: Record<string, number>, local: boolean): Promise<void> {
  const { startMesh } = await import('../test/proxy/fixtures/mesh.js');
  const mesh = await startMesh(
    [
      { name: 'client', node: 'node-a', ip: CLIENT },
      { name: 'server', node: local ? 'node-a' : 'node-b', ip: local ? POD_A : POD_B },
    ],
    [{ name: 'server', vip: VIP, port: 9000, targetPort: port, pods: ['server'] }],
    { limits },
  );
  mesh.route('client', VIP, 9000);
  process.on('message', (m: { cpu?: boolean; exit?: boolean }) => {
    if (m.cpu) process.send!({ cpu: process.cpuUsage() });
    else if (m.exit) void mesh.close().then(() => process.exit(0));
  });
  process.send!({ outbound: mesh.a.outbound });
}

// ---- the client pod ----------------------------------------------------------------------------------
function transfer(outbound: { host: string; port: number }, mb: number, direction: 'up' | 'down'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: outbound.host, port: outbound.port, localAddress: CLIENT, allowHalfOpen: true });
    const chunk = Buffer.alloc(1 << 20, 0x41);
    let t0 = 0;
    let received = 0;
    s.once('error', reject);
    s.once('connect', () => {
      t0 = performance.now();
      if (direction === 'down') {
        s.end(Buffer.from([1]));
        s.on('data', (d: Buffer) => (received += d.length));
        s.on('end', () => (received === mb << 20 ? resolve(performance.now() - t0) : reject(new Error(`received ${received} of ${mb << 20} bytes`))));
        return;
      }
      let left = mb;
      const pump = () => {
        while (left > 0) {
          left--;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
        s.end();
      };
      let reply = '';
      s.on('data', (d: Buffer) => (reply += d.toString()));
      s.on('end', () => (Number(reply) === mb << 20 ? resolve(performance.now() - t0) : reject(new Error(`server counted ${reply} of ${mb << 20} bytes`))));
      pump();
    });
  });
}

export interface TunnelRow {
  direction: 'up' | 'down';
  rep: number;
  mb: number;
  ms: number;
  mbPerSecond: number;
  /** both proxies' CPU seconds per GB moved */
  cpuSecondsPerGb: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mb: { type: 'string', default: '100' },
      reps: { type: 'string', default: '3' },
      direction: { type: 'string', default: 'both' },
      'stream-window': { type: 'string' },
      'connection-window': { type: 'string' },
      'frame-size': { type: 'string' },
      path: { type: 'string', default: 'tunnel' },
      role: { type: 'string' },
      port: { type: 'string' },
      limits: { type: 'string' },
    },
  });
  const mb = Number(values.mb);
  const local = values.path === 'local';
  if (values.path !== 'local' && values.path !== 'tunnel') throw new Error(`--path: tunnel or local, not ${values.path}`);
  if (values.role === 'server') return serverRole(mb, local ? POD_A : POD_B);
  if (values.role === 'mesh') return meshRole(Number(values.port), JSON.parse(values.limits ?? '{}') as Record<string, number>, local);

  const limits: Record<string, number> = {};
  if (values['stream-window']) limits['streamWindow'] = Number(values['stream-window']);
  if (values['connection-window']) limits['connectionWindow'] = Number(values['connection-window']);
  if (values['frame-size']) limits['maxFrameSize'] = Number(values['frame-size']);
  const server = fork(SELF, ['--role', 'server', '--mb', String(mb), '--path', values.path!], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { port } = await new Promise<Msg>((r) => server.once('message', (m) => r(m as Msg)));
  const mesh = fork(SELF, ['--role', 'mesh', '--port', String(port), '--limits', JSON.stringify(limits), '--path', values.path!], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { outbound } = await new Promise<Msg>((r) => mesh.once('message', (m) => r(m as Msg)));
  const directions: Array<'up' | 'down'> = values.direction === 'both' ? ['up', 'down'] : [values.direction as 'up' | 'down'];
  const rows: TunnelRow[] = [];
  try {
    await transfer(outbound!, 8, 'up'); // warm-up: the tunnel connection and its TLS handshake
    for (let rep = 1; rep <= Number(values.reps); rep++) {
      for (const direction of directions) {
        const before = (await ask(mesh, { cpu: true })).cpu!;
        const ms = await transfer(outbound!, mb, direction);
        const after = (await ask(mesh, { cpu: true })).cpu!;
        const cpuS = (after.user + after.system - before.user - before.system) / 1e6;
        const row = { direction, rep, mb, ms, mbPerSecond: mb / (ms / 1000), cpuSecondsPerGb: cpuS / (mb / 1024) };
        rows.push(row);
        process.stderr.write(`${direction} rep ${rep}: ${mb} MB in ${ms.toFixed(0)} ms = ${row.mbPerSecond.toFixed(1)} MB/s, proxies ${row.cpuSecondsPerGb.toFixed(2)} CPU s/GB\n`);
      }
    }
  } finally {
    mesh.send({ exit: true });
    await new Promise((r) => mesh.once('exit', r));
    server.kill();
  }
  for (const direction of directions) {
    const rs = rows.filter((r) => r.direction === direction).map((r) => r.mbPerSecond).sort((a, b) => a - b);
    const cpu = rows.filter((r) => r.direction === direction).map((r) => r.cpuSecondsPerGb).sort((a, b) => a - b);
    process.stdout.write(`${direction}: median ${rs[Math.floor(rs.length / 2)]!.toFixed(1)} MB/s (${rs[0]!.toFixed(1)}–${rs.at(-1)!.toFixed(1)}), ${cpu[Math.floor(cpu.length / 2)]!.toFixed(2)} CPU s/GB; ${values.path}, limits ${JSON.stringify(limits)}, ${process.version}\n`);
  }
  process.stdout.write(JSON.stringify({ limits, rows }) + '\n');
}

await main();
