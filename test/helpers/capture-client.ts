// A small client run INSIDE a pod stand-in (cgroup + netns) by kernel tests and bench/capture.ts.
//   loop   <host> <port> <count> <concurrency>  open and close connections; print a JSON summary with
//                                                connect latencies (µs): ok, failed, p50, p99, seconds
//   hold   <host> <port>                        connect, print {"local":..,"localPort":..}, hold until stdin ends
//   marked <host> <port> <mark>                 connect with SO_MARK set (blocking, via libc); print {"ok":..,"errno":..}
//   serve  <host> <port>                        HTTP server answering "pod-ok"; prints "listening" when ready
import net from 'node:net';

import { errnoName } from '../../native/errors.js';
import { libc } from '../../native/libc.js';
import { sockaddr } from '../../native/sockaddr.js';

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function loop(host: string, port: number, count: number, concurrency: number): Promise<void> {
  const lat: number[] = [];
  const errors = new Map<string, number>();
  let started = 0;
  let failed = 0;
  const t0 = process.hrtime.bigint();
  const one = () =>
    new Promise<void>((resolve) => {
      const s0 = process.hrtime.bigint();
      const sock = net.connect({ host, port });
      sock.once('connect', () => {
        lat.push(Number(process.hrtime.bigint() - s0) / 1000);
        sock.destroy();
        resolve();
      });
      sock.once('error', (e: NodeJS.ErrnoException) => {
        failed++;
        errors.set(e.code ?? e.message, (errors.get(e.code ?? e.message) ?? 0) + 1);
        sock.destroy();
        resolve();
      });
    });
  const worker = async () => {
    while (started < count) {
      started++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((a, b) => a - b);
  process.stdout.write(
    JSON.stringify({ ok: lat.length, failed, errors: Object.fromEntries(errors), seconds, p50: percentile(lat, 50), p99: percentile(lat, 99) }) + '\n',
  );
}

function hold(host: string, port: number): void {
  const sock = net.connect({ host, port }, () => {
    process.stdout.write(JSON.stringify({ local: sock.localAddress, localPort: sock.localPort }) + '\n');
  });
  sock.on('error', (e: NodeJS.ErrnoException) => {
    process.stdout.write(JSON.stringify({ error: e.code ?? e.message }) + '\n');
    process.exit(1);
  });
  process.stdin.on('end', () => sock.end(() => process.exit(0)));
  process.stdin.resume();
}

function marked(host: string, port: number, mark: number): void {
  const c = libc();
  const { buf, family } = sockaddr(host, port);
  const fd = c.socket(family, 1 /* SOCK_STREAM */, 0);
  const v = Buffer.alloc(4);
  v.writeUInt32LE(mark);
  // read errno before touching process.stdout: its lazy setup makes syscalls of its own (isatty)
  if (c.setsockopt(fd, 1 /* SOL_SOCKET */, 36 /* SO_MARK */, v, 4) < 0) {
    const err = errnoName(c.errno());
    process.stdout.write(JSON.stringify({ ok: false, errno: `setsockopt: ${err}` }) + '\n');
    return;
  }
  const rc = c.connect(fd, buf, buf.length);
  const err = rc === 0 ? undefined : errnoName(c.errno());
  process.stdout.write(JSON.stringify({ ok: rc === 0, errno: err }) + '\n');
  c.close(fd);
}

function serve(host: string, port: number): void {
  const server = net.createServer((sock) => {
    sock.once('data', () => sock.end('HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\npod-ok'));
    sock.on('error', () => {});
  });
  server.listen({ host, port, ipv6Only: false }, () => process.stdout.write('listening\n'));
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

const [mode, host = '', portText = '0', ...rest] = process.argv.slice(2);
const port = Number(portText);
if (mode === 'loop') await loop(host, port, Number(rest[0] ?? 1), Number(rest[1] ?? 1));
else if (mode === 'hold') hold(host, port);
else if (mode === 'serve') serve(host, port);
else if (mode === 'marked') marked(host, port, Number(rest[0] ?? 0x539));
else {
  process.stderr.write('usage: capture-client loop|hold|marked <host> <port> ...\n');
  process.exit(2);
}
