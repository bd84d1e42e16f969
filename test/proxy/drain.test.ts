// Graceful drain (what SIGTERM does): a request in flight completes, the listener stops accepting, an idle
// keep-alive connection is closed, and the proxy finishes once the last connection is done. Also the idle
// timeout: an opaque connection with no bytes either way is closed after idleTimeoutMs.
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { dialFrom, listen, startMesh, type PodSpec } from './fixtures/mesh.js';

const PODS: PodSpec[] = [
  { name: 'sleep', node: 'node-a', ip: '127.0.10.1' },
  { name: 'slow', node: 'node-a', ip: '127.0.10.2' },
];

t.test('drain lets the request in flight finish and refuses new connections', async (t) => {
  let release: (() => void) | undefined;
  const server = http.createServer((req, res) => {
    if (req.url === '/slow') release = () => res.end('finished');
    else res.end('fast');
  });
  const port = await listen(server, '127.0.10.2');
  const mesh = await startMesh(PODS, []);
  t.teardown(async () => {
    await mesh.close();
    server.close();
  });
  mesh.route('sleep', '127.0.10.2', port);
  const agent = new http.Agent({ keepAlive: true });
  const get = (path: string) =>
    new Promise<{ body: string; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
      http
        .get({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.10.1', path, agent }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ body, headers: res.headers }));
        })
        .on('error', reject);
    });
  t.equal((await get('/fast')).body, 'fast', 'a kept-alive connection is now idle');
  const slow = get('/slow');
  // Drain only once the server holds the request, so it is truly in flight.
  while (!release) await new Promise((r) => setTimeout(r, 10));
  const drained = mesh.a.proxy.drain(5000);
  await new Promise((r) => setTimeout(r, 100));
  const refused = await dialFrom('127.0.10.1', mesh.a).then(
    (s) => new Promise<string>((r) => s.once('close', () => r('closed')).once('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error'))),
    (e: NodeJS.ErrnoException) => e.code,
  );
  t.equal(refused, 'ECONNREFUSED', 'no new connections once draining');
  release!();
  const r = await slow;
  t.equal(r.body, 'finished', 'the request in flight completed');
  t.equal(r.headers['connection'], 'close', 'and its connection was told to close');
  const t0 = Date.now();
  await drained;
  t.ok(Date.now() - t0 < 4000, 'drain finished once connections closed, before its timeout');
  t.equal(mesh.a.proxy.connections.size, 0);
  agent.destroy();
});

t.test('an idle opaque connection is closed after the idle timeout', async (t) => {
  const server = net.createServer((s) => s.on('error', () => {}));
  const port = await listen(server, '127.0.10.2');
  const mesh = await startMesh(PODS, [], { limits: { idleTimeoutMs: 300, sniffTimeoutMs: 20 } });
  t.teardown(async () => {
    await mesh.close();
    server.close();
  });
  mesh.route('sleep', '127.0.10.2', port);
  const s = await dialFrom('127.0.10.1', mesh.a);
  const t0 = Date.now();
  const how = await new Promise<string>((r) => {
    s.on('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error'));
    s.on('close', () => r('closed'));
  });
  const took = Date.now() - t0;
  t.ok(took >= 250 && took < 3000, `closed after ~300 ms of silence (${took} ms, ${how})`);
});
