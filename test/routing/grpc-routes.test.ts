// GRPCRoute through two real node proxies: a route by gRPC service/method to different backends, and a
// retry on UNAVAILABLE (grpc-status 14 in a trailers-only response) from the Service's TrafficPolicy, the
// unary call's message replayed byte-exact. Servers are plain node:http2 speaking gRPC framing.
import t from 'tap';
import http2 from 'node:http2';
import net from 'node:net';
import { Registry } from 'prom-client';

import { RoutingMetrics } from '../../agent/routing/metrics.js';
import { routingRouter } from '../../agent/routing/router.js';
import { listen, metricValue, startMesh, type PodSpec } from '../proxy/fixtures/mesh.js';
import { applyPolicies } from './apply-policies.js';

const PODS: PodSpec[] = [
  { name: 'client', node: 'node-a', ip: '127.0.21.1' },
  { name: 'g1', node: 'node-a', ip: '127.0.21.2' },
  { name: 'g2', node: 'node-b', ip: '127.0.21.3' },
];
const VIP = '127.0.97.40';

const frame = (payload: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, 0, payload.length]), payload]);

t.test('GRPCRoute by method; retry on unavailable', async (t) => {
  const seen: { pod: string; path: string; body: string }[] = [];
  const counts: Record<string, number> = {};
  const servers: http2.Http2Server[] = [];
  const serve = (pod: string) => {
    const s = http2.createServer();
    s.on('stream', (stream, h) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const path = String(h[':path']);
        seen.push({ pod, path, body: Buffer.concat(chunks).subarray(5).toString() });
        const n = (counts[path] = (counts[path] ?? 0) + 1);
        if (path.endsWith('/Flaky') && n % 2 === 1) {
          // trailers-only error, as gRPC servers answer before any message
          return stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'try again' }, { endStream: true });
        }
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(frame(Buffer.from(pod)));
      });
    });
    servers.push(s);
    return s;
  };
  const port = await listen(serve('g1'), '127.0.21.2');
  await new Promise<void>((r) => serve('g2').listen(port, '127.0.21.3', r));
  const registry = new Registry();
  const mesh = await startMesh(
    PODS,
    [
      { name: 'grpc', vip: VIP, port: 50051, targetPort: port, pods: ['g1'], appProtocol: 'grpc' },
      { name: 'grpc-v2', vip: '127.0.97.41', port: 50051, targetPort: port, pods: ['g2'], appProtocol: 'grpc' },
    ],
    { stages: { router: routingRouter({ metrics: new RoutingMetrics(registry) }) } },
  );
  t.teardown(async () => {
    await mesh.close();
    for (const s of servers) s.close();
  });
  applyPolicies(mesh, [
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'GRPCRoute',
      metadata: { name: 'by-method', namespace: 'default' },
      spec: {
        parentRefs: [{ group: '', kind: 'Service', name: 'grpc' }],
        rules: [
          { matches: [{ method: { service: 'shop.Cart', method: 'Checkout' } }], backendRefs: [{ name: 'grpc-v2', port: 50051 }] },
          { matches: [{ method: { service: 'shop.Cart' } }], backendRefs: [{ name: 'grpc', port: 50051 }] },
        ],
      },
    },
    { apiVersion: 'weft.io/v1alpha1', kind: 'TrafficPolicy', metadata: { name: 'grpc-retries', namespace: 'default' }, spec: { targetRef: { group: '', kind: 'Service', name: 'grpc' }, retries: { attempts: 2, retryOn: 'unavailable' } } },
  ]);
  mesh.route('client', VIP, 50051);
  const session = http2.connect('http://grpc', { createConnection: () => net.connect({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.21.1' }) });
  t.teardown(() => session.close());
  const call = (method: string, msg: string) =>
    new Promise<{ status: number; grpcStatus: string | undefined; body: string }>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers' });
      let status = 0;
      let grpcStatus: string | undefined;
      const chunks: Buffer[] = [];
      req.on('response', (h) => {
        status = Number(h[':status']);
        if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
      });
      req.on('trailers', (tr) => (grpcStatus = String(tr['grpc-status'])));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve({ status, grpcStatus, body: Buffer.concat(chunks).subarray(5).toString() }));
      req.on('error', reject);
      req.end(frame(Buffer.from(msg)));
    });
  const checkout = await call('/shop.Cart/Checkout', 'c1');
  t.same([checkout.grpcStatus, checkout.body], ['0', 'g2'], 'Checkout routed to grpc-v2 by method');
  const get = await call('/shop.Cart/Get', 'g1');
  t.same([get.grpcStatus, get.body], ['0', 'g1'], 'other methods of the service to grpc');
  const other = await call('/other.Svc/Get', 'x');
  t.equal(other.grpcStatus, '12', 'no rule matches: UNIMPLEMENTED (the gRPC form of 404)');
  for (let i = 0; i < 5; i++) {
    const before = seen.length;
    const r = await call('/shop.Cart/Flaky', `message-${i}`);
    t.same([r.grpcStatus, r.body], ['0', 'g1'], `call ${i}: UNAVAILABLE retried, then OK`);
    const tries = seen.slice(before);
    t.same(tries.map((x) => x.body), [`message-${i}`, `message-${i}`], 'the message was replayed byte-exact');
  }
  t.equal(await metricValue(registry, 'weft_retries_total', { destination_service: 'grpc.default.svc.cluster.local', policy: 'traffic-policy' }), 5);
});

t.test('RequestMirror over HTTP/2: a copy with the -shadow authority and the body, response dropped', async (t) => {
  const seen: { pod: string; authority: string; path: string; body: string }[] = [];
  const servers: http2.Http2Server[] = [];
  const serve = (pod: string) => {
    const s = http2.createServer();
    s.on('stream', (stream, h) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        seen.push({ pod, authority: String(h[':authority']), path: String(h[':path']), body: Buffer.concat(chunks).toString() });
        stream.respond({ ':status': 200 });
        stream.end(pod);
      });
    });
    servers.push(s);
    return s;
  };
  const port = await listen(serve('g1'), '127.0.21.2');
  await new Promise<void>((r) => serve('g2').listen(port, '127.0.21.3', r));
  const registry = new Registry();
  const mesh = await startMesh(
    PODS,
    [
      { name: 'web', vip: VIP, port: 8080, targetPort: port, pods: ['g1'], appProtocol: 'kubernetes.io/h2c' },
      { name: 'web-shadow', vip: '127.0.97.41', port: 8080, targetPort: port, pods: ['g2'], appProtocol: 'kubernetes.io/h2c' },
    ],
    { stages: { router: routingRouter({ metrics: new RoutingMetrics(registry) }) } },
  );
  t.teardown(async () => {
    await mesh.close();
    for (const s of servers) s.close();
  });
  applyPolicies(mesh, [{
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'mirror', namespace: 'default' },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'web' }],
      rules: [{ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'web-shadow', port: 8080 } } }], backendRefs: [{ name: 'web', port: 8080 }] }],
    },
  }]);
  mesh.route('client', VIP, 8080);
  const session = http2.connect('http://web.default:8080', { createConnection: () => net.connect({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.21.1' }) });
  t.teardown(() => session.close());
  const answer = await new Promise<string>((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': '/m?x=1' });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
    req.end('mirror me');
  });
  t.equal(answer, 'g1', 'the client gets the primary answer');
  for (let i = 0; i < 100 && !seen.some((x) => x.pod === 'g2'); i++) await new Promise((r) => setTimeout(r, 20));
  const copy = seen.find((x) => x.pod === 'g2');
  t.same(copy && [copy.authority, copy.path, copy.body], ['web.default-shadow:8080', '/m?x=1', 'mirror me'], 'the mirror got the copy, body included, marked -shadow');
  let sent = 0;
  for (let i = 0; i < 50 && sent < 1; i++) {
    sent = await metricValue(registry, 'weft_mirrored_requests_total', { mirror: 'default/web-shadow:8080', result: 'sent' });
    if (sent < 1) await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(sent, 1, 'counted as sent');
});
