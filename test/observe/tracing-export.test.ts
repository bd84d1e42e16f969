// Tracing through real proxies on loopback, exported to a local OTLP/HTTP receiver that decodes the
// protobuf with the official OpenTelemetry definitions (test/helpers/otlp-receiver.ts): HTTP/1.1, HTTP/2
// and gRPC across two nodes and on one node. Each request gives a CLIENT span from the caller's proxy and a
// SERVER span from the destination's, one trace id, parent and child; the pod receives the context with
// the server span as its parent; the access log names the same trace id; a collector that refuses costs
// spans (counted), never requests.
import t, { type Test } from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { createLogger } from '../../common/log.js';
import { Registry } from 'prom-client';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { accessLogObserver } from '../../agent/observe/access-log.js';
import { ProxyTracing } from '../../agent/observe/tracing.js';
import { SpanExportMetrics } from '../../agent/observe/span-export.js';
import type { MeshConfig } from '../../common/mesh.js';
import { listen, metricValue, startMesh, type PodSpec } from '../proxy/fixtures/mesh.js';
import { startOtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';

const PODS: PodSpec[] = [
  { name: 'sleep', node: 'node-a', ip: '127.0.10.1' },
  { name: 'api-a', node: 'node-a', ip: '127.0.10.2', sa: 'api' },
  { name: 'api-b', node: 'node-b', ip: '127.0.20.6', sa: 'api' },
];
const VIP_NEAR = '127.0.97.50';
const VIP_FAR = '127.0.97.51';
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

const receiver = await startOtlpReceiver();
t.teardown(() => receiver.close());

/** every request's headers as the pods saw them, by path */
const seen = new Map<string, http.IncomingHttpHeaders>();
const h1 = http.createServer((req, res) => {
  seen.set(req.url!, req.headers);
  res.statusCode = req.url === '/fail' ? 503 : 200;
  res.end('ok');
});
const h1Port = await listen(h1, '127.0.10.2');
const h1b = http.createServer(h1.listeners('request')[0] as http.RequestListener);
await new Promise<void>((r) => h1b.listen(h1Port, '127.0.20.6', r));
const h2 = http2.createServer();
h2.on('stream', (stream, headers) => {
  seen.set(String(headers[':path']), headers);
  if (String(headers['content-type']).startsWith('application/grpc')) {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': headers[':path'] === '/echo.Echo/Missing' ? '5' : '0' }));
    stream.end();
    return;
  }
  stream.respond({ ':status': 200 });
  stream.end('ok');
});
const h2Port = await listen(h2 as unknown as net.Server, '127.0.20.6');

const lines: Record<string, unknown>[] = [];
const log = createLogger({ level: 'info', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
const registries: Record<string, Registry> = {};
const tracers: ProxyTracing[] = [];
const mesh = await startMesh(
  PODS,
  [
    { name: 'api', vip: VIP_NEAR, port: 80, targetPort: h1Port, pods: ['api-a'] },
    { name: 'api-far', vip: VIP_FAR, port: 80, targetPort: h1Port, pods: ['api-b'] },
    { name: 'api-h2', vip: VIP_FAR, port: 81, targetPort: h2Port, pods: ['api-b'] },
  ],
  {
    stages: { observers: [accessLogObserver(log.child('access'))] },
    tracing: (node, state) => {
      const registry = (registries[node] = new Registry());
      const metrics = new SpanExportMetrics(registry, () => 0);
      const tr = new ProxyTracing({ state, sampling: 1, exporter: new OTLPTraceExporter({ url: receiver.url, timeoutMillis: 2000 }), limits: { delayMs: 20 }, count: (r, n) => metrics.spans.inc({ result: r }, n) });
      tracers.push(tr);
      return tr;
    },
  },
);
const cfg: MeshConfig = { ...mesh.config, version: 2, workloads: mesh.config.workloads.map((w) => ({ ...w, accessLog: 'json' as const })) };
mesh.a.state.update(cfg);
mesh.b.state.update(cfg);
t.teardown(async () => {
  await mesh.close();
  for (const s of [h1, h1b, h2]) s.close();
});

function get(vip: string, port: number, path: string, headers: Record<string, string> = {}): Promise<number> {
  mesh.route('sleep', vip, port);
  return new Promise((resolve, reject) => {
    const req = http.get({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.10.1', path, agent: false, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

function h2Request(path: string, headers: Record<string, string>): Promise<{ status: number; grpcStatus: string | undefined }> {
  mesh.route('sleep', VIP_FAR, 81);
  const session = http2.connect('http://api-h2.default', { createConnection: () => net.connect({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.10.1' }) });
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': path, ...headers });
    let status = 0;
    let grpcStatus: string | undefined;
    req.on('response', (h) => {
      status = Number(h[':status']);
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
    });
    req.on('trailers', (h) => (grpcStatus = String(h['grpc-status'])));
    req.on('end', () => {
      session.close();
      resolve({ status, grpcStatus });
    });
    req.on('error', reject);
    req.resume();
    req.end(headers['content-type'] === 'application/grpc' ? Buffer.from([0, 0, 0, 0, 0]) : undefined);
  });
}

async function spansFor(path: string, n: number): Promise<ReceivedSpan[]> {
  for (let i = 0; i < 200; i++) {
    const got = receiver.spans.filter((s) => String(s.attributes['http.url']).endsWith(path));
    if (got.length >= n) return got;
    await new Promise((r) => setTimeout(r, 25));
  }
  return receiver.spans.filter((s) => String(s.attributes['http.url']).endsWith(path));
}

/** the CLIENT and SERVER span of one request: one trace, server child of client, the pod's parent the server */
function checkHop(t: Test, spans: ReceivedSpan[], pod: http.IncomingHttpHeaders | http2.IncomingHttpHeaders | undefined, nodes: [string, string]): { client: ReceivedSpan; server: ReceivedSpan } {
  const client = spans.find((s) => s.kind === 'SPAN_KIND_CLIENT')!;
  const server = spans.find((s) => s.kind === 'SPAN_KIND_SERVER')!;
  t.ok(client && server, 'a CLIENT and a SERVER span');
  t.equal(spans.length, 2, 'one span per proxy hop');
  t.equal(server.traceId, client.traceId, 'one trace id');
  t.equal(server.parentSpanId, client.spanId, 'the destination\'s span is the child of the source\'s');
  t.same([client.attributes.node_id, server.attributes.node_id], nodes, 'recorded by the caller\'s node, then the destination\'s');
  t.same([client.resource['k8s.node.name'], server.resource['k8s.node.name']], nodes);
  t.equal(pod?.traceparent, `00-${client.traceId}-${server.spanId}-01`, 'the pod gets the context with the server span as its parent');
  t.equal(pod?.['x-b3-traceid'], client.traceId);
  t.equal(pod?.['x-b3-spanid'], server.spanId);
  t.equal(pod?.['x-b3-parentspanid'], client.spanId);
  t.equal(pod?.['x-b3-sampled'], '1');
  return { client, server };
}

t.test('HTTP/1.1 across nodes, in the caller\'s trace: spans exported as OTLP protobuf, the access logs carry the trace id', async (t) => {
  t.equal(await get(VIP_FAR, 80, '/far?q=1', { traceparent: `00-${TRACE}-${CALLER_SPAN}-01`, tracestate: 'congo=t61rcWkgMzE' }), 200);
  const spans = await spansFor('/far?q=1', 2);
  const { client, server } = checkHop(t, spans, seen.get('/far?q=1'), ['node-a', 'node-b']);
  t.equal(client.traceId, TRACE, 'the caller\'s trace');
  t.equal(client.parentSpanId, CALLER_SPAN, 'the caller\'s span is the client span\'s parent');
  t.equal(seen.get('/far?q=1')?.tracestate, 'congo=t61rcWkgMzE', 'tracestate passes as it came');
  t.equal(client.name, 'api-far.default.svc.cluster.local:80/*');
  t.match(client.attributes, {
    'http.method': 'GET',
    'http.url': `http://${mesh.a.outbound.host}:${mesh.a.outbound.port}/far?q=1`,
    'http.status_code': '200',
    'http.protocol': 'HTTP/1.1',
    upstream_cluster: 'outbound|80||api-far.default.svc.cluster.local',
    upstream_address: `127.0.20.6:${h1Port}`,
    response_flags: '-',
    'source.principal': mesh.spiffe('sleep'),
    'destination.principal': mesh.spiffe('api-b'),
    'peer.address': '127.0.10.1',
  });
  t.match(server.attributes, { upstream_cluster: `inbound|${h1Port}||`, 'source.principal': mesh.spiffe('sleep'), 'destination.principal': mesh.spiffe('api-b'), 'http.status_code': '200' });
  t.ok(receiver.requests.every((r) => r.path === '/v1/traces' && r.contentType === 'application/x-protobuf'), 'OTLP/HTTP with protobuf bodies');
  const logged = lines.filter((l) => l.msg === 'request' && l.path === '/far?q=1');
  t.same(logged.map((l) => [l.node, l.direction, l.trace_id]).sort(), [['node-a', 'outbound', TRACE], ['node-b', 'inbound', TRACE]], 'both access log lines name the exported trace id');
});

t.test('no context: the source proxy starts the trace the access log names; same node, one proxy records both spans', async (t) => {
  t.equal(await get(VIP_NEAR, 80, '/near'), 200);
  const spans = await spansFor('/near', 2);
  const { client } = checkHop(t, spans, seen.get('/near'), ['node-a', 'node-a']);
  t.equal(client.parentSpanId, '', 'a new root');
  const logged = lines.filter((l) => l.msg === 'request' && l.path === '/near');
  t.ok(logged.length === 2 && logged.every((l) => l.trace_id === client.traceId), 'outbound and inbound lines carry the started trace id');
});

t.test('HTTP/2 and gRPC across nodes; a 503 and a gRPC error are error spans', async (t) => {
  const r = await h2Request('/h2', { 'x-b3-traceid': 'a'.repeat(16), 'x-b3-spanid': 'b'.repeat(16), 'x-b3-sampled': '1', b3: `${'a'.repeat(16)}-${'b'.repeat(16)}-1` });
  t.equal(r.status, 200);
  const h2spans = await spansFor('/h2', 2);
  const hop = checkHop(t, h2spans, seen.get('/h2'), ['node-a', 'node-b']);
  t.equal(hop.client.traceId, '0'.repeat(16) + 'a'.repeat(16), 'B3 context, 64-bit trace id padded');
  t.equal(hop.client.parentSpanId, 'b'.repeat(16));
  t.equal(hop.client.attributes['http.protocol'], 'HTTP/2');
  t.equal(seen.get('/h2')?.b3, `${hop.client.traceId}-${hop.server.spanId}-1-${hop.client.spanId}`, 'the single b3 header rewritten too');

  const g = await h2Request('/echo.Echo/Missing', { 'content-type': 'application/grpc', te: 'trailers' });
  t.equal(g.grpcStatus, '5');
  const gspans = await spansFor('/echo.Echo/Missing', 2);
  const ghop = checkHop(t, gspans, seen.get('/echo.Echo/Missing'), ['node-a', 'node-b']);
  t.equal(ghop.client.attributes['grpc.status_code'], '5');
  t.equal(ghop.client.status, 'STATUS_CODE_ERROR', 'NOT_FOUND is an error span');

  t.equal(await get(VIP_FAR, 80, '/fail'), 503);
  const failed = await spansFor('/fail', 2);
  t.ok(failed.every((s) => s.status === 'STATUS_CODE_ERROR' && s.attributes.error === 'true'), '503: both spans errors');
});

t.test('a collector that refuses: spans counted as dropped, requests unaffected', async (t) => {
  const before = await metricValue(registries['node-a']!, 'weft_tracing_spans_total', { result: 'exported' });
  t.ok(before > 0, `node-a exported ${before} spans so far`);
  receiver.failNext(1000, 400);
  for (let i = 0; i < 5; i++) t.equal(await get(VIP_FAR, 80, `/refused${i}`), 200);
  for (const tr of tracers) await tr.processor.forceFlush();
  const dropped = await metricValue(registries['node-a']!, 'weft_tracing_spans_total', { result: 'dropped_export_failed' });
  t.ok(dropped >= 5, `node-a: ${dropped} spans lost to the refusing collector`);
  receiver.failNext(0, 200);
});
