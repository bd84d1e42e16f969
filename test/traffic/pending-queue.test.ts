// connectionPool.http.http1MaxPendingRequests through real proxies on loopback, same node and across nodes:
// with maxConnections 1 reached, HTTP/1.1 requests wait first in first out; one more than the queue holds is
// answered 503 + x-weft-overloaded at once (while the others still wait); a waiting request whose client
// goes away leaves the queue, so the next one takes its place; a waiting request whose timeout fires is
// answered 504 and leaves too. The server holds each request until the test lets it go, so nothing here
// depends on timing.
import t, { type Test } from 'tap';
import http from 'node:http';
import net from 'node:net';
import type { TrafficEntry } from '../../common/policy.js';
import type { CompiledTraffic } from '../../common/policy/traffic.js';
import type { BackendState } from '../../agent/traffic/backend-state.js';
import { routingRouter } from '../../agent/routing/router.js';
import { BACKEND_SPACE } from '../../agent/traffic/stages.js';
import { eventually, listen, startMesh, type Mesh, type PodSpec } from '../proxy/fixtures/mesh.js';

const PODS: PodSpec[] = [
  { name: 'sleep', node: 'node-a', ip: '127.0.11.1' },
  { name: 'near', node: 'node-a', ip: '127.0.11.7', sa: 'api' },
  { name: 'far', node: 'node-b', ip: '127.0.21.7', sa: 'api' },
];
const VIP = '127.0.97.60';

const policy = (tr: Partial<CompiledTraffic>): TrafficEntry => ({
  kind: 'TrafficPolicy',
  key: 'TrafficPolicy/default/web',
  namespace: 'default',
  name: 'web',
  traffic: { service: 'default/web', createdMs: 0, loadBalancer: { kind: 'ROUND_ROBIN' }, problems: [], ...tr },
});

function apply(mesh: Mesh, policies: TrafficEntry[]): void {
  for (const n of [mesh.a, mesh.b]) n.state.update({ ...n.state.config, version: n.state.version + 1, policies });
}

/** A server that holds every request until release(n); `seen` lists the request numbers in arrival order. */
async function heldServer(t: Test, ip: string) {
  const seen: string[] = [];
  const held = new Map<string, http.ServerResponse>();
  const server = http.createServer((req, res) => {
    const n = new URL(req.url ?? '/', 'http://x').searchParams.get('n') ?? '?';
    seen.push(n);
    held.set(n, res);
  });
  const port = await listen(server, ip);
  t.teardown(() => {
    for (const r of held.values()) r.destroy();
    server.close();
  });
  return {
    seen,
    port,
    release(n: string) {
      held.get(n)!.end(`done ${n}`);
      held.delete(n);
    },
  };
}

interface Answer {
  status: number;
  overloaded: string | undefined;
}

/** One request from the caller pod on a connection of its own; `req` is returned so a test can abandon it. */
function send(mesh: Mesh, n: string): { req: http.ClientRequest; answer: Promise<Answer> } {
  const req = http.get({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.11.1', path: `/?n=${n}`, agent: false });
  const answer = new Promise<Answer>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, overloaded: res.headers['x-weft-overloaded'] as string | undefined }));
    });
    req.on('error', reject);
  });
  return { req, answer };
}

for (const [pod, ip, where] of [['near', '127.0.11.7', 'same node'], ['far', '127.0.21.7', 'cross node']] as const) {
  t.test(`${where}: requests wait FIFO for the one connection; overflow 503 at once; a client that leaves, leaves the queue`, async (t) => {
    const srv = await heldServer(t, ip);
    const mesh = await startMesh(PODS, [{ name: 'web', vip: VIP, port: 80, targetPort: srv.port, pods: [pod], appProtocol: 'http' }]);
    t.teardown(() => mesh.close());
    mesh.route('sleep', VIP, 80);
    apply(mesh, [policy({ connectionPool: { maxConnections: 1, http1MaxPendingRequests: 2 } })]);
    const backend = () => mesh.a.proxy.pipeline.runtime.peek<BackendState>(BACKEND_SPACE, 'default/web:80');
    const waiting = () => Promise.resolve(backend()?.pending.length ?? 0);

    const r1 = send(mesh, '1');
    await eventually(async () => srv.seen.length, 1);
    const r2 = send(mesh, '2');
    const r3 = send(mesh, '3');
    t.equal(await eventually(waiting, 2), 2, 'two requests wait for the connection');
    const r4 = send(mesh, '4');
    t.same(await r4.answer, { status: 503, overloaded: 'true' }, 'a third finds the queue full: 503 + x-weft-overloaded, answered while the others still wait');
    t.same(srv.seen, ['1'], 'only the first reached the pod');

    r2.answer.catch(() => {});
    r2.req.destroy();
    t.equal(await eventually(waiting, 1), 1, 'the request whose client went away left the queue');
    const r5 = send(mesh, '5');
    t.equal(await eventually(waiting, 2), 2, 'its place is free for the next one');

    srv.release('1');
    t.equal((await r1.answer).status, 200);
    await eventually(async () => srv.seen.length, 2);
    srv.release('3');
    t.equal((await r3.answer).status, 200);
    await eventually(async () => srv.seen.length, 3);
    srv.release('5');
    t.equal((await r5.answer).status, 200);
    t.same(srv.seen, ['1', '3', '5'], 'first in, first out; the abandoned request never reached the pod');
    t.equal(backend()!.pending.length, 0);
    t.equal(backend()!.overloaded, 1, 'one overload counted (weft_traffic_overloaded_total)');
    t.equal(backend()!.activeRequests, 0, 'every slot released');
  });

  t.test(`${where}: a waiting request whose timeout fires is answered 504 and leaves the queue`, async (t) => {
    const srv = await heldServer(t, ip);
    // the agent's router: it applies the TrafficPolicy's timeouts.request
    const mesh = await startMesh(PODS, [{ name: 'web', vip: VIP, port: 80, targetPort: srv.port, pods: [pod], appProtocol: 'http' }], { stages: { router: routingRouter() } });
    t.teardown(() => mesh.close());
    mesh.route('sleep', VIP, 80);
    const pool = { maxConnections: 1, http1MaxPendingRequests: 5 };
    apply(mesh, [policy({ connectionPool: pool })]);
    const backend = () => mesh.a.proxy.pipeline.runtime.peek<BackendState>(BACKEND_SPACE, 'default/web:80');

    // the first request keeps the version it started with (no timeout): it holds the connection throughout
    const r1 = send(mesh, '1');
    await eventually(async () => srv.seen.length, 1);
    apply(mesh, [policy({ connectionPool: pool, timeouts: { requestMs: 400 } })]);
    const r2 = send(mesh, '2');
    t.equal(await eventually(() => Promise.resolve(backend()?.pending.length ?? 0), 1), 1, 'waiting');
    t.equal((await r2.answer).status, 504, 'its request timeout fired while it waited');
    t.equal(backend()!.pending.length, 0, 'the queue is empty');
    t.equal(backend()!.pending.cancelled, 1, 'it left the queue without a slot');
    srv.release('1');
    t.equal((await r1.answer).status, 200);
    t.same(srv.seen, ['1'], 'the timed-out waiter never reached the pod');
    t.equal(backend()!.activeRequests, 0);
  });
}

t.test('a pipelined request that arrives while the one before it waits is kept and served after it', async (t) => {
  const srv = await heldServer(t, '127.0.11.7');
  const mesh = await startMesh(PODS, [{ name: 'web', vip: VIP, port: 80, targetPort: srv.port, pods: ['near'], appProtocol: 'http' }]);
  t.teardown(() => mesh.close());
  mesh.route('sleep', VIP, 80);
  apply(mesh, [policy({ connectionPool: { maxConnections: 1, http1MaxPendingRequests: 2 } })]);
  const backend = () => mesh.a.proxy.pipeline.runtime.peek<BackendState>(BACKEND_SPACE, 'default/web:80');
  const r1 = send(mesh, '1');
  await eventually(async () => srv.seen.length, 1);
  const sock = net.connect({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.11.1' });
  t.teardown(() => sock.destroy());
  let got = '';
  sock.on('data', (c: Buffer) => (got += c.toString('latin1')));
  sock.write('GET /?n=2 HTTP/1.1\r\nHost: web\r\n\r\n');
  t.equal(await eventually(() => Promise.resolve(backend()?.pending.length ?? 0), 1), 1, 'the first request on the connection waits');
  sock.write('GET /?n=3 HTTP/1.1\r\nHost: web\r\n\r\n');
  await new Promise((r) => setTimeout(r, 50));
  srv.release('1');
  t.equal((await r1.answer).status, 200);
  await eventually(async () => srv.seen.length, 2);
  srv.release('2');
  await eventually(async () => srv.seen.length, 3);
  srv.release('3');
  await eventually(async () => (got.match(/HTTP\/1\.1 200/g) ?? []).length, 2);
  t.same(srv.seen, ['1', '2', '3'], 'the pipelined request was read during the wait and not lost');
  t.match(got, /done 2[\s\S]*done 3/, 'both answered, in order');
});
