// Distributed tracing in the node proxy, as Envoy does it for Istio: every proxied HTTP/1.1, HTTP/2 and
// gRPC request carries W3C traceparent (and tracestate as it came) and B3 to the next hop; a request without
// a context gets one. The source proxy records a CLIENT span, the destination proxy a SERVER span, its child
// (same node, one proxy records both); the next hop's parent is this hop's span. Sampling follows the
// caller's decision; when the caller made none (no context, or B3 without a sampling state) the trace id
// decides at the configured rate (OpenTelemetry's TraceIdRatioBased, so every hop of a trace agrees).
//
// Cost: an unsampled request never reaches the SDK. It costs the header parse, at most two random ids and
// the header edits; a caller that already decided "not sampled" and sent its ids has its headers passed
// on untouched (our span is not recorded, so the next hop's parent stays the caller's span: pointing it
// at an unrecorded span would orphan the app's own spans). Sampled requests get SDK spans, exported by
// span-export.ts off the request path.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, RandomIdGenerator, TraceIdRatioBasedSampler, TracerProvider, type IdGenerator, type SpanExporter } from '@opentelemetry/sdk-trace';
import type { MeshState } from '../state/mesh-state.js';
import type { RequestContext, RequestTrace } from '../pipeline/context.js';
import type { HeaderEdits, RequestTracing } from '../pipeline/stages.js';
import { isError, spanAttributes, spanName } from './span-attributes.js';
import { BoundedBatchProcessor, DEFAULT_EXPORT_LIMITS, type ExportLimits, type SpanResult } from './span-export.js';
import { decisionWithoutIds, outgoingHeaders, readTraceContext } from './trace-context.js';

/** One request's trace state on this proxy. */
class HopTrace implements RequestTrace {
  /** the span the next hop is a child of, and its parent (x-b3-parentspanid) */
  forwardSpanId: string;
  forwardParentId: string | undefined;
  client: Span | undefined;
  server: Span | undefined;
  private edits: HeaderEdits | undefined;

  constructor(
    readonly traceId: string,
    readonly sampled: boolean,
    callerSpanId: string,
    callerParentId: string | undefined,
    /** false: the caller's headers already say all the next hop needs (decided, unsampled, with ids) */
    private readonly rewrite: boolean,
    private readonly b3Single: boolean,
    private readonly keepTracestate: boolean,
  ) {
    this.forwardSpanId = callerSpanId;
    this.forwardParentId = callerParentId;
  }

  forwardFrom(span: Span): void {
    this.forwardParentId = this.forwardSpanId;
    this.forwardSpanId = span.spanContext().spanId;
    this.edits = undefined;
  }

  headers(): HeaderEdits | undefined {
    if (!this.rewrite) return undefined;
    return (this.edits ??= outgoingHeaders({ traceId: this.traceId, spanId: this.forwardSpanId, parentId: this.forwardParentId, sampled: this.sampled, b3Single: this.b3Single, keepTracestate: this.keepTracestate }));
  }
}

/** Hands the SDK the trace id already chosen (a new root's, or a B3 trace id that came without a span id). */
class ChosenIds implements IdGenerator {
  private readonly random = new RandomIdGenerator();
  next: string | undefined;
  generateTraceId(): string {
    const id = this.next ?? this.random.generateTraceId();
    this.next = undefined;
    return id;
  }
  generateSpanId(): string {
    return this.random.generateSpanId();
  }
}

export interface TracingOptions {
  state: MeshState;
  /** fraction of undecided requests sampled, 0..1 */
  sampling: number;
  exporter: SpanExporter;
  limits?: Partial<ExportLimits>;
  count: (result: SpanResult, n: number) => void;
}

export class ProxyTracing implements RequestTracing {
  private readonly ids = new ChosenIds();
  private readonly ratio: TraceIdRatioBasedSampler;
  private readonly provider: TracerProvider;
  private readonly tracer: Tracer;
  readonly processor: BoundedBatchProcessor;

  constructor(private readonly o: TracingOptions) {
    this.ratio = new TraceIdRatioBasedSampler(o.sampling);
    this.processor = new BoundedBatchProcessor(o.exporter, { ...DEFAULT_EXPORT_LIMITS, ...o.limits }, o.count);
    this.provider = new TracerProvider({
      // the decision is made before the SDK is asked (unsampled requests never reach it)
      sampler: new AlwaysOnSampler(),
      idGenerator: this.ids,
      resource: resourceFromAttributes({ 'service.name': 'weft-proxy', 'service.instance.id': o.state.nodeName, 'k8s.node.name': o.state.nodeName }),
      spanProcessors: [this.processor],
    });
    this.tracer = this.provider.getTracer('weft-proxy');
  }

  source(ctx: RequestContext): void {
    ctx.trace = this.begin(ctx, SpanKind.CLIENT);
  }

  destination(ctx: RequestContext): void {
    const t = ctx.trace as HopTrace | undefined;
    // arrived through the tunnel (or from outside the mesh): this hop's context starts from the headers
    if (!t) return void (ctx.trace = this.begin(ctx, SpanKind.SERVER));
    // same node: the destination half's span, a child of the client span, once (retries re-enter here)
    if (!t.sampled || t.server || !t.client) return;
    t.server = this.tracer.startSpan(spanName(this.o.state, ctx), { kind: SpanKind.SERVER }, trace.setSpan(ROOT_CONTEXT, t.client));
    t.forwardFrom(t.server);
  }

  headers(ctx: RequestContext): HeaderEdits | undefined {
    return (ctx.trace as HopTrace | undefined)?.headers();
  }

  end(ctx: RequestContext): void {
    const t = ctx.trace as HopTrace | undefined;
    if (!t?.sampled) return;
    const end = ctx.outcome.endMs;
    for (const [span, side] of [[t.server, 'server'], [t.client, 'client']] as const) {
      if (!span) continue;
      span.setAttributes(spanAttributes(this.o.state, ctx, side));
      if (isError(ctx)) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end(end);
    }
  }

  private begin(ctx: RequestContext, kind: SpanKind): HopTrace {
    const h = (n: string) => ctx.header(n);
    const inc = readTraceContext(h);
    const traceId = inc?.traceId ?? this.ids.generateTraceId();
    let sampled = inc?.sampled;
    if (!inc) sampled = decisionWithoutIds(h);
    sampled ??= this.ratio.shouldSample(ROOT_CONTEXT, traceId).decision === 2;
    // any b3 header is rewritten (also a bare decision such as "b3: 1": left as it was it would contradict the rest)
    const b3Single = inc?.b3Single ?? h('b3') !== undefined;
    const w3c = inc?.w3c ?? false;
    if (!sampled) {
      const decidedWithIds = inc !== undefined && inc.sampled === false && inc.parentId !== undefined;
      return new HopTrace(traceId, false, inc?.parentId ?? this.ids.generateSpanId(), undefined, !decidedWithIds, b3Single, w3c);
    }
    let parent: Context = ROOT_CONTEXT;
    if (inc?.parentId) parent = trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId: inc.parentId, traceFlags: TraceFlags.SAMPLED, isRemote: true });
    else this.ids.next = traceId;
    const span = this.tracer.startSpan(spanName(this.o.state, ctx), { kind, startTime: ctx.outcome.startMs }, parent);
    const t = new HopTrace(traceId, true, inc?.parentId ?? '', undefined, true, b3Single, w3c);
    t[kind === SpanKind.CLIENT ? 'client' : 'server'] = span;
    t.forwardFrom(span);
    if (!inc?.parentId) t.forwardParentId = undefined;
    return t;
  }

  /** exports what is queued (agent shutdown) */
  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}
