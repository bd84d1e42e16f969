// Tap on the agent (agent/observe/tap.ts): through real proxies on loopback, a request across nodes is seen
// by both proxies (outbound on the caller's node, inbound on the destination's) with both identities and
// mTLS, same-node requests by the one proxy twice without mTLS; sensitive header values never leave the
// agent; filters select; nobody tapping costs no call past the boolean; the rate cap and the bounded queue
// count what they leave out, and the counts are handed on once.
import t from 'tap';
import http from 'node:http';

import { REDACTED, type TapEvent } from '../../common/tap.js';
import { TapHub, tapObserver } from '../../agent/observe/tap.js';
import type { Authorizer } from '../../agent/pipeline/stages.js';
import { listen, startMesh, type PodSpec } from '../proxy/fixtures/mesh.js';
import { finishedRequest, tapState } from '../helpers/tap-request.js';

const PODS: PodSpec[] = [
  { name: 'sleep', node: 'node-a', ip: '127.0.11.1' },
  { name: 'api-a', node: 'node-a', ip: '127.0.11.2', sa: 'api' },
  { name: 'api-b', node: 'node-b', ip: '127.0.21.6', sa: 'api' },
];
const VIP_A = '127.0.97.50';
const VIP_B = '127.0.97.51';
const SECRET = 'Bearer s3cr3t-token-value';
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

t.test('through real proxies: both views, identities, mTLS, redaction, filters', async (t) => {
  const hub = new TapHub();
  const authorizer = (): Authorizer => ({ connection: () => ({ allow: true }), request: (ctx) => (ctx.path === '/secret' ? { allow: false, policy: 'default/deny-secret' } : { allow: true }) });
  const srv = http.createServer((req, res) => res.end(`ok ${req.url}`));
  const port = await listen(srv, '127.0.11.2');
  const srvB = http.createServer((req, res) => res.end(`ok ${req.url}`));
  await new Promise<void>((r) => srvB.listen(port, '127.0.21.6', r));
  const mesh = await startMesh(
    PODS,
    [
      { name: 'api', vip: VIP_A, port: 80, targetPort: port, pods: ['api-a'] },
      { name: 'api-far', vip: VIP_B, port: 80, targetPort: port, pods: ['api-b'] },
    ],
    { stages: { authorizer, observers: [tapObserver(hub)] } },
  );
  t.teardown(async () => {
    await mesh.close();
    srv.close();
    srvB.close();
  });
  const get = (path: string, headers: Record<string, string> = {}) =>
    new Promise<number>((resolve, reject) => {
      const req = http.get({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.11.1', path, agent: false, headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    });
  const settle = () => new Promise((r) => setTimeout(r, 100));
  const events = (): TapEvent[] => hub.drain().flatMap((b) => b.events);

  // nobody taps: the observer never gets past its boolean
  const offer = hub.offer.bind(hub);
  let offered = 0;
  hub.offer = (...a) => {
    offered++;
    offer(...a);
  };
  mesh.route('sleep', VIP_B, 80);
  t.equal(await get('/before'), 200);
  await settle();
  t.equal(offered, 0, 'no tap open: no request is offered');
  t.same(hub.drain(), []);

  hub.start('t1', {}, 1000);
  t.equal(await get('/x?y=1', { authorization: SECRET, cookie: 'session=abc123', 'x-request-id': 'r-1', traceparent: `00-${TRACE}-00f067aa0ba902b7-01` }), 200);
  await settle();
  const cross = events();
  t.equal(cross.length, 2, 'one request across nodes: two views');
  const out = cross.find((e) => e.node === 'node-a')!;
  const inn = cross.find((e) => e.node === 'node-b')!;
  t.match(out, { reporter: 'source', direction: 'outbound', tls: true, method: 'GET', path: '/x?y=1', status: 200, protocol: 'http1', attempts: 1, traceId: TRACE });
  t.match(out.source, { workload: 'sleep', namespace: 'default', pod: 'sleep', principal: mesh.spiffe('sleep'), addr: '127.0.11.1' });
  t.match(out.destination, { workload: 'api-b', namespace: 'default', pod: 'api-b', principal: mesh.spiffe('api-b'), service: 'api-far.default.svc.cluster.local', addr: `127.0.21.6:${port}` });
  t.match(inn, { reporter: 'destination', direction: 'inbound', tls: true, status: 200, traceId: TRACE });
  t.match(inn.source, { workload: 'sleep', principal: mesh.spiffe('sleep') });
  t.match(inn.destination, { workload: 'api-b', pod: 'api-b', principal: mesh.spiffe('api-b') });
  t.ok(out.latencyMs >= 0 && out.bytesSent > 0, 'latency and bytes');
  for (const e of cross) {
    const h = new Map(e.headers.map(([k, v]) => [k.toLowerCase(), v]));
    t.equal(h.get('authorization'), REDACTED, `${e.node}: authorization redacted`);
    t.equal(h.get('cookie'), REDACTED, `${e.node}: cookie redacted`);
    t.equal(h.get('x-request-id'), 'r-1', 'other headers shown');
    t.notMatch(JSON.stringify(e), /s3cr3t|abc123/, 'the secret values appear nowhere in the event');
  }

  // same node: the one proxy reports both views, without mTLS
  mesh.route('sleep', VIP_A, 80);
  t.equal(await get('/same'), 200);
  await settle();
  const same = events();
  t.same(same.map((e) => [e.node, e.reporter, e.tls]).sort(), [['node-a', 'destination', false], ['node-a', 'source', false]]);

  // filters: path prefix, status class, namespace/workload, pod, method
  hub.stop('t1');
  hub.start('paths', { pathPrefix: '/only' }, 1000);
  hub.start('denied', { statusClass: 4 }, 1000);
  hub.start('to-api-a', { toNamespace: 'default', toWorkload: 'api-a' }, 1000);
  hub.start('pod', { pod: 'api-b' }, 1000);
  hub.start('posts', { method: 'POST' }, 1000);
  t.equal(await get('/only/this'), 200);
  t.equal(await get('/secret'), 403);
  mesh.route('sleep', VIP_B, 80);
  t.equal(await get('/far'), 200);
  await settle();
  const byTap = new Map(hub.drain().map((b) => [b.id, b.events.map((e) => `${e.node}:${e.reporter}:${e.path}:${e.status}`).sort()]));
  t.same(byTap.get('paths'), ['node-a:destination:/only/this:200', 'node-a:source:/only/this:200']);
  t.same(byTap.get('denied'), ['node-a:destination:/secret:403', 'node-a:source:/secret:403']);
  t.same(byTap.get('to-api-a'), ['node-a:destination:/only/this:200', 'node-a:destination:/secret:403', 'node-a:source:/only/this:200', 'node-a:source:/secret:403']);
  t.same(byTap.get('pod'), ['node-a:source:/far:200', 'node-b:destination:/far:200']);
  t.equal(byTap.get('posts'), undefined, 'no POST: nothing for that tap');
});

const request = (path: string, status = 200) => finishedRequest(path, ['Authorization', SECRET, 'Proxy-Authorization', 'Basic eA==', 'Set-Cookie', 'a=b', 'accept', '*/*'], status);
const STATE = tapState('n1');

t.test('rate cap and bounded queue: drops counted per reason and handed on once', async (t) => {
  let now = 0;
  const hub = new TapHub(() => now, 5);
  t.equal(hub.active, false);
  hub.start('slow', {}, 3);
  t.equal(hub.active, true);
  for (let i = 0; i < 10; i++) hub.offer(request(`/r${i}`), STATE);
  let [b] = hub.drain();
  t.same(b!.events.map((e) => e.path), ['/r0', '/r1', '/r2'], 'the first three within the cap of 3/s');
  t.equal(b!.droppedRate, 7, 'seven over the cap');
  t.equal(b!.droppedQueue, 0);
  t.same(hub.drain(), [], 'counts are handed on once');
  now += 1000; // a second later: three more tokens, and not more than the cap however long it waited
  for (let i = 0; i < 4; i++) hub.offer(request('/later'), STATE);
  [b] = hub.drain();
  t.equal(b!.events.length, 3);
  t.equal(b!.droppedRate, 1);

  // a queue nobody drains (the stream to the controller is full): at most 5 kept, the rest counted
  hub.stop('slow');
  hub.start('fast', {}, 1000);
  for (let i = 0; i < 8; i++) hub.offer(request(`/q${i}`), STATE);
  [b] = hub.drain();
  t.same(b!.events.map((e) => e.path), ['/q0', '/q1', '/q2', '/q3', '/q4'], 'the oldest kept, the queue bounded');
  t.equal(b!.droppedQueue, 3);
  t.equal(b!.droppedRate, 0);
  hub.stopAll();
  t.equal(hub.active, false, 'no tap left: the hot path is back to one boolean');
});

t.test('a local answer (no endpoint picked) is this side\'s view; header values cut and redacted', async (t) => {
  const hub = new TapHub();
  hub.start('all', {}, 100);
  hub.offer(request('/nothing-here', 404), STATE);
  const [e] = hub.drain()[0]!.events;
  t.match(e, { node: 'n1', reporter: 'source', direction: 'outbound', status: 404, tls: false, source: { workload: 'load', namespace: 'shop', pod: 'load-1', principal: 'spiffe://cluster.local/ns/shop/sa/load' }, destination: { principal: null, addr: '10.97.0.1:80' } });
  t.same(e!.headers, [['Authorization', REDACTED], ['Proxy-Authorization', REDACTED], ['Set-Cookie', REDACTED], ['accept', '*/*']]);
});
