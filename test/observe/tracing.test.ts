// Tracing without a network: how the proxy reads a caller's context (W3C, B3 multi and single header),
// decides sampling (the caller's decision first, else the configured rate), parents its spans (source
// CLIENT, destination SERVER, same node both) and what it sends to the next hop; and the export queue
// (bounded, drops counted, never waiting on the collector).
import t from 'tap';
import { InMemorySpanExporter, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { SpanKind } from '@opentelemetry/api';
import { outgoingHeaders, readTraceContext } from '../../agent/observe/trace-context.js';
import { ProxyTracing } from '../../agent/observe/tracing.js';
import { BoundedBatchProcessor, type SpanResult } from '../../agent/observe/span-export.js';
import { applyEdits } from '../../agent/proxy/h1/exchange.js';
import { RequestContext, newConnectionContext, sourceFromPeer } from '../../agent/pipeline/context.js';
import { MeshState } from '../../agent/state/mesh-state.js';
import { tracingFlags } from '../../agent/observe/tracing-flags.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

const headerOf = (raw: string[]) => (n: string) => {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === n) out.push(raw[i + 1]!);
  return out.length ? out.join(', ') : undefined;
};

t.test('reading a context: W3C first, then B3 multi, then b3; malformed values mean no context', async (t) => {
  t.same(readTraceContext(headerOf(['traceparent', `00-${TRACE}-${PARENT}-01`])), { traceId: TRACE, parentId: PARENT, sampled: true, b3Single: false, w3c: true });
  t.same(readTraceContext(headerOf(['traceparent', `00-${TRACE}-${PARENT}-00`]))?.sampled, false, 'flags 00: the caller decided not to sample');
  t.same(readTraceContext(headerOf(['traceparent', `00-${TRACE}-${PARENT}-01`, 'x-b3-traceid', 'a'.repeat(32), 'x-b3-spanid', 'b'.repeat(16)]))?.traceId, TRACE, 'traceparent wins over B3');
  t.equal(readTraceContext(headerOf(['traceparent', `00-${'0'.repeat(32)}-${PARENT}-01`])), undefined, 'all-zero trace id');
  t.equal(readTraceContext(headerOf(['traceparent', `00-${TRACE}-${'0'.repeat(16)}-01`])), undefined, 'all-zero parent id');
  t.equal(readTraceContext(headerOf(['traceparent', `ff-${TRACE}-${PARENT}-01`])), undefined, 'version ff');
  t.equal(readTraceContext(headerOf(['traceparent', `00-${TRACE}-${PARENT}-01-extra`])), undefined, 'version 00 has exactly four fields');
  t.same(readTraceContext(headerOf(['traceparent', `01-${TRACE}-${PARENT}-01-future`]))?.traceId, TRACE, 'a later version may add fields');
  t.same(readTraceContext(headerOf(['X-B3-TraceId', '463ac35c9f6413ad', 'X-B3-SpanId', 'a2fb4a1d1a96d312', 'X-B3-Sampled', '1'])), { traceId: '0000000000000000463ac35c9f6413ad', parentId: 'a2fb4a1d1a96d312', sampled: true, b3Single: false, w3c: false }, 'a 64-bit B3 trace id is left-padded');
  t.equal(readTraceContext(headerOf(['x-b3-traceid', TRACE, 'x-b3-spanid', PARENT]))?.sampled, undefined, 'B3 without a sampling state: deferred to us');
  t.equal(readTraceContext(headerOf(['x-b3-traceid', TRACE, 'x-b3-spanid', PARENT, 'x-b3-sampled', '0', 'x-b3-flags', '1']))?.sampled, true, 'debug means sampled');
  t.equal(readTraceContext(headerOf(['x-b3-traceid', TRACE, 'x-b3-sampled', 'false']))?.sampled, false);
  t.same(readTraceContext(headerOf(['b3', `${TRACE}-${PARENT}-1-${'c'.repeat(16)}`])), { traceId: TRACE, parentId: PARENT, sampled: true, b3Single: true, w3c: false });
  t.same(readTraceContext(headerOf(['b3', `${TRACE}-${PARENT}`]))?.sampled, undefined, 'b3 without sampling state');
  t.equal(readTraceContext(headerOf(['b3', '0'])), undefined, 'a lone sampling state has no ids');
  t.equal(readTraceContext(headerOf(['b3', 'zz-yy-1'])), undefined);
  t.equal(readTraceContext(headerOf([])), undefined);
});

t.test('what the next hop gets', async (t) => {
  const e = outgoingHeaders({ traceId: TRACE, spanId: 'a'.repeat(16), parentId: PARENT, sampled: true, b3Single: true, keepTracestate: true });
  const raw = applyEdits(['Host', 'x', 'X-B3-SpanId', 'stale', 'X-B3-Flags', '1', 'tracestate', 'congo=t61rcWkgMzE'], e);
  const h = headerOf(raw);
  t.equal(h('traceparent'), `00-${TRACE}-${'a'.repeat(16)}-01`);
  t.equal(h('x-b3-traceid'), TRACE);
  t.equal(h('x-b3-spanid'), 'a'.repeat(16), 'the caller\'s span id is replaced, not repeated');
  t.equal(h('x-b3-parentspanid'), PARENT);
  t.equal(h('x-b3-sampled'), '1');
  t.equal(h('x-b3-flags'), undefined);
  t.equal(h('b3'), `${TRACE}-${'a'.repeat(16)}-1-${PARENT}`);
  t.equal(h('tracestate'), 'congo=t61rcWkgMzE', 'tracestate passes as it came');
  const root = headerOf(applyEdits(['x-b3-parentspanid', 'stale', 'tracestate', 'stale=1'], outgoingHeaders({ traceId: TRACE, spanId: 'a'.repeat(16), parentId: undefined, sampled: false, b3Single: false, keepTracestate: false })));
  t.equal(root('tracestate'), undefined, 'a tracestate that came without its traceparent does not go on');
  t.equal(root('x-b3-parentspanid'), undefined, 'a root has no parent span');
  t.equal(root('traceparent'), `00-${TRACE}-${'a'.repeat(16)}-00`);
  t.equal(root('b3'), undefined, 'the single header only when the request had one');
});

const state = new MeshState('node-a');
state.update({
  version: 1,
  trustDomain: 'cluster.local',
  nodes: [],
  workloads: [],
  services: [{ name: 'api', namespace: 'default', clusterIPs: ['10.97.0.1'], ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }], endpoints: [] }],
  policies: [],
} as never);

function request(headers: string[], side: 'source' | 'destination' = 'source'): RequestContext {
  const conn = newConnectionContext({ side, protocol: 'http1', source: sourceFromPeer('spiffe://cluster.local/ns/default/sa/client', '10.98.1.2'), original: { ip: '10.97.0.1', port: 80 }, service: state.serviceByVip('10.97.0.1', 80), destination: undefined, destinationPort: 8080 });
  return new RequestContext(conn, 'http1', 'GET', '/items?id=1', 'api.default.svc.cluster.local', 'http', headers);
}

function tracer(sampling: number): { tracing: ProxyTracing; exporter: InMemorySpanExporter; counts: Record<string, number> } {
  const exporter = new InMemorySpanExporter();
  const counts: Record<string, number> = {};
  const tracing = new ProxyTracing({ state, sampling, exporter, limits: { delayMs: 1 }, count: (r, n) => (counts[r] = (counts[r] ?? 0) + n) });
  return { tracing, exporter, counts };
}

async function finish(tr: ProxyTracing, ctx: RequestContext, status = 200): Promise<void> {
  ctx.outcome.status = status;
  ctx.outcome.endMs = performance.now();
  tr.end(ctx);
  await tr.processor.forceFlush();
}

/** The headers the next hop would see, applied to what came in. */
function forwarded(tr: ProxyTracing, ctx: RequestContext): (n: string) => string | undefined {
  return headerOf(applyEdits([...ctx.rawHeaders], tr.headers(ctx)));
}

t.test('no context, sampled: the source starts a trace, its CLIENT span is the next hop\'s parent; the destination\'s SERVER span is its child', async (t) => {
  const { tracing, exporter, counts } = tracer(1);
  const src = request([]);
  tracing.source(src);
  t.ok(src.trace?.sampled);
  const out = forwarded(tracing, src);
  const tp = out('traceparent')!;
  t.match(tp, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  t.equal(out('x-b3-traceid'), src.trace!.traceId);
  // the destination proxy receives the tunnel request with those headers
  const wire = ['traceparent', tp, 'x-b3-traceid', out('x-b3-traceid')!, 'x-b3-spanid', out('x-b3-spanid')!, 'x-b3-sampled', out('x-b3-sampled')!];
  const dst = request(wire, 'destination');
  tracing.destination(dst);
  const toPod = forwarded(tracing, dst);
  await finish(tracing, dst);
  await finish(tracing, src);
  const spans = exporter.getFinishedSpans();
  const client = spans.find((s) => s.kind === SpanKind.CLIENT)!;
  const server = spans.find((s) => s.kind === SpanKind.SERVER)!;
  t.ok(client && server, 'one span each');
  t.equal(client.parentSpanContext, undefined, 'the client span is the root');
  t.equal(server.spanContext().traceId, client.spanContext().traceId, 'one trace id');
  t.equal(server.parentSpanContext?.spanId, client.spanContext().spanId, 'SERVER is the child of CLIENT');
  t.equal(tp.split('-')[2], client.spanContext().spanId, 'the tunnel request carries the client span id');
  t.equal(toPod('traceparent'), `00-${client.spanContext().traceId}-${server.spanContext().spanId}-01`, 'the pod gets the server span as its parent');
  t.equal(toPod('x-b3-parentspanid'), client.spanContext().spanId);
  t.equal(client.name, 'api.default.svc.cluster.local:80/*', 'Istio\'s span name');
  t.match(client.attributes, { 'http.method': 'GET', 'http.url': 'http://api.default.svc.cluster.local/items?id=1', 'http.status_code': '200', upstream_cluster: 'outbound|80||api.default.svc.cluster.local', node_id: 'node-a', response_flags: '-', 'source.principal': 'spiffe://cluster.local/ns/default/sa/client', component: 'proxy', 'http.protocol': 'HTTP/1.1' });
  t.match(server.attributes, { upstream_cluster: 'inbound|8080||' });
  t.equal(counts.exported, 2);
});

t.test('same node: one proxy records both spans, CLIENT then SERVER, and the pod sees the server span', async (t) => {
  const { tracing, exporter } = tracer(1);
  const ctx = request(['traceparent', `00-${TRACE}-${PARENT}-01`]);
  tracing.source(ctx);
  tracing.destination(ctx);
  tracing.destination(ctx); // a retry to a local pod does not open a second one
  const toPod = forwarded(tracing, ctx);
  await finish(tracing, ctx, 503);
  const spans = exporter.getFinishedSpans();
  t.equal(spans.length, 2);
  const client = spans.find((s) => s.kind === SpanKind.CLIENT)!;
  const server = spans.find((s) => s.kind === SpanKind.SERVER)!;
  t.equal(client.parentSpanContext?.spanId, PARENT, 'the caller\'s span is the client span\'s parent');
  t.equal(client.spanContext().traceId, TRACE);
  t.equal(server.parentSpanContext?.spanId, client.spanContext().spanId);
  t.equal(toPod('traceparent'), `00-${TRACE}-${server.spanContext().spanId}-01`);
  t.equal(client.status.code, 2, 'a 503 is an error (SpanStatusCode.ERROR)');
  t.equal(client.attributes.error, 'true');
});

t.test('the caller decides: sampled at rate 0, not sampled at rate 1', async (t) => {
  const { tracing, exporter } = tracer(0);
  const yes = request(['traceparent', `00-${TRACE}-${PARENT}-01`]);
  tracing.source(yes);
  t.ok(yes.trace!.sampled);
  await finish(tracing, yes);
  t.equal(exporter.getFinishedSpans().length, 1);

  const all = tracer(1);
  const no = request(['traceparent', `00-${TRACE}-${PARENT}-00`, 'x-b3-traceid', TRACE]);
  all.tracing.source(no);
  t.notOk(no.trace!.sampled);
  t.equal(no.trace!.traceId, TRACE, 'the access log gets the caller\'s trace id');
  t.equal(all.tracing.headers(no), undefined, 'decided, unsampled, with ids: the headers pass untouched');
  await finish(all.tracing, no);
  t.equal(all.exporter.getFinishedSpans().length, 0, 'nothing recorded');
  for (const h of [['b3', '0'], ['X-B3-Sampled', '0'], ['x-b3-sampled', 'false']]) {
    const deny = request(h);
    all.tracing.source(deny);
    t.notOk(deny.trace!.sampled, `${h.join(': ')} without ids is a decision too`);
  }
  const none = tracer(0);
  for (const h of [['b3', '1'], ['b3', 'd'], ['x-b3-sampled', '1'], ['x-b3-flags', '1']]) {
    const accept = request(h);
    none.tracing.source(accept);
    t.ok(accept.trace!.sampled, `${h.join(': ')} without ids: sampled at rate 0`);
    if (h[0] === 'b3') t.equal(forwarded(none.tracing, accept)('b3')!.split('-')[0], accept.trace!.traceId, 'the bare b3 decision is replaced by the full header');
  }
});

t.test('undecided: the rate decides, by trace id (every hop of a trace agrees)', async (t) => {
  const { tracing } = tracer(0.5);
  // TraceIdRatioBased: the trace id's 32-bit fold against rate * 2^32
  const low = '00000000000000000000000000000001';
  const high = 'ffffffff000000000000000000000000';
  for (const [id, want] of [[low, true], [high, false]] as const) {
    const ctx = request(['x-b3-traceid', id, 'x-b3-spanid', PARENT]);
    tracing.source(ctx);
    t.equal(ctx.trace!.sampled, want, `${id} at 50 %`);
    const out = forwarded(tracing, ctx);
    t.equal(out('x-b3-sampled'), want ? '1' : '0', 'our decision goes to the next hop');
    t.equal(out('traceparent')!.split('-')[1], id, 'in the caller\'s trace');
  }
  // no context at rate 0: a trace is still started and propagated, unsampled
  const none = tracer(0);
  const ctx = request([]);
  none.tracing.source(ctx);
  t.notOk(ctx.trace!.sampled);
  t.match(forwarded(none.tracing, ctx)('traceparent'), /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  // roughly the rate over many new traces
  const { tracing: onePct } = tracer(0.01);
  let n = 0;
  for (let i = 0; i < 20_000; i++) {
    const c = request([]);
    onePct.source(c);
    if (c.trace!.sampled) n++;
  }
  t.ok(n > 100 && n < 320, `1 % of 20,000 new traces sampled: ${n}`);
});

t.test('a B3 trace id without a span id: the span joins that trace as its root', async (t) => {
  const { tracing, exporter } = tracer(1);
  const ctx = request(['x-b3-traceid', TRACE, 'x-b3-sampled', '1']);
  tracing.source(ctx);
  await finish(tracing, ctx);
  const [s] = exporter.getFinishedSpans();
  t.equal(s!.spanContext().traceId, TRACE);
  t.equal(s!.parentSpanContext, undefined);
});

t.test('the export queue: bounded, drops and failures counted, onEnd never waits for the collector', async (t) => {
  const counts: Partial<Record<SpanResult, number>> = {};
  let release: (() => void) | undefined;
  let exports = 0;
  const slow: SpanExporter = {
    export(spans, done) {
      exports++;
      // the first export hangs until released, then fails; later ones succeed
      if (exports === 1) release = () => done({ code: 1 });
      else done({ code: 0 });
    },
    shutdown: async () => {},
  };
  const p = new BoundedBatchProcessor(slow, { maxQueue: 4, maxBatch: 2, delayMs: 1 }, (r, n) => (counts[r] = (counts[r] ?? 0) + n));
  const span = {} as ReadableSpan;
  for (let i = 0; i < 2; i++) p.onEnd(span); // a full batch: exported at once, hangs
  t.equal(exports, 1);
  for (let i = 0; i < 6; i++) p.onEnd(span); // 4 fit in the queue, 2 are dropped
  t.equal(p.queued, 4);
  t.equal(counts.dropped_queue_full, 2);
  release!();
  await p.forceFlush();
  t.same(counts, { dropped_queue_full: 2, dropped_export_failed: 2, exported: 4 });
});

t.test('flags: a collector URL turns tracing on at 1 %; a rate without a collector is refused', async (t) => {
  t.equal(tracingFlags(undefined, undefined), undefined);
  t.same(tracingFlags('http://otel:4318/v1/traces', undefined), { collector: 'http://otel:4318/v1/traces', sampling: 0.01 });
  t.same(tracingFlags('http://otel:4318/v1/traces', '100'), { collector: 'http://otel:4318/v1/traces', sampling: 1 });
  t.throws(() => tracingFlags(undefined, '5'), /--trace-sampling.*without --trace-collector/);
  t.throws(() => tracingFlags('otel:4318', undefined), /--trace-collector/);
  t.throws(() => tracingFlags('http://otel:4318/v1/traces', '101'), /--trace-sampling/);
  t.throws(() => tracingFlags('http://otel:4318/v1/traces', 'x'), /--trace-sampling/);
});
