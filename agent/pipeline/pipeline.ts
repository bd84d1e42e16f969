// The request pipeline: one path for every request whatever adapter feeds it, in the design's order
// route → authorize → traffic policy → pick endpoint → forward → outcome. The source half runs on the
// caller's node (route, fault, retries/timeouts, pick, forward locally or through the tunnel); the
// destination half runs on the destination pod's node for every way a request arrives (authorize, local
// rate limit, then the pod). Same node, the destination half runs in-process on the same parsed request.
//
// Stages are compiled once per config version (factories in wiring.ts); a request keeps the version it
// started with. Protocol adapters (agent/proxy/http1*.ts, http2.ts) implement UpstreamExchange: how to
// send one attempt, stream its response, or answer locally; the pipeline decides everything else.
import type { Logger } from '../../common/log.js';
import type { MeshState } from '../state/mesh-state.js';
import type { IstioMetrics } from '../metrics/istio.js';
import type { AgentMetrics } from '../metrics/agent-health.js';
import { flagsLabel, grpcStatusOf } from '../metrics/response-labels.js';
import type { DestinationResolver, Route } from '../proxy/destination.js';
import { VersionBackends } from './backends.js';
import type { ConnectionContext, RequestContext, ResponseFlag } from './context.js';
import { addressedBackend } from './defaults.js';
import { LiveRegistry } from './live.js';
import { RuntimeState } from './runtime.js';
import { FALLBACK_HEADER, RESPONSE_HEADERS_ATTR, type AttemptResult, type Backend, type CompiledStages, type EndpointRef, type ForwardAction, type HeaderEdits, type LocalResponse, type PendingPermit, type Permit, type RequestTracing, type StageFactories, type StageInput, type WeightedBackend } from './stages.js';

/** What a protocol adapter does for the pipeline, for one request. */
export interface UpstreamExchange {
  /** true when the request can be sent again (no body, or its body is fully buffered) */
  readonly replayable: boolean;
  /**
   * Sends the request (with the action's edits and the backend's) to the route's endpoint; resolves at the
   * response head, or with the failure before one. Never rejects.
   */
  send(route: Route, action: ForwardAction, backend: WeightedBackend): Promise<AttemptResult>;
  /** Streams the last attempt's response to the client; resolves when the exchange is over. */
  commit(): Promise<void>;
  /** Drops the last attempt's response, before a retry. */
  discard(): void;
  /** A timeout fired: a pending send resolves with error 'timeout'; a response being streamed is reset. */
  abort(): void;
  /** Answers the client from the proxy; resolves when written. */
  reply(r: LocalResponse): void;
  /**
   * Optional: `f` is called once if the client goes away before the exchange is over (a request waiting
   * for a circuit slot leaves the queue); undefined removes it.
   */
  onGone?(f: (() => void) | undefined): void;
}

export interface PipelineOptions {
  state: MeshState;
  resolver: DestinationResolver;
  factories: StageFactories;
  metrics: IstioMetrics;
  agentMetrics: AgentMetrics;
  log: Logger;
  /** trace context and spans per hop; absent: trace headers pass as they came, no spans */
  tracing?: RequestTracing;
}

/** The L4 plan for one connection: where it goes and the circuit slot it holds. */
export interface L4Plan {
  backend: Backend;
  endpoint: EndpointRef;
  route: Route;
  permit: Permit;
}

export const DENIED_BODY = 'RBAC: access denied';

const FAILURE_STATUS: Record<string, [number, ResponseFlag | undefined]> = {
  connect_failed: [503, 'UF'],
  connect_timeout: [503, 'UF'],
  tunnel_stream: [503, 'UF'],
  tunnel_timeout: [503, 'UF'],
  refused: [503, 'UF'],
  misdirected: [503, 'UF'],
  reset: [503, 'UR'],
  timeout: [504, 'UT'],
  denied: [403, 'UAEX'],
  overloaded: [503, 'UO'],
  no_healthy_upstream: [503, 'UH'],
  unknown_source: [503, undefined],
  no_backend: [500, 'NR'],
};

/** What the destination half sends to the pod: the request as it came (the source applied the route's edits). */
const DELIVER_ACTION: ForwardAction = Object.freeze({ kind: 'forward', backends: Object.freeze([Object.freeze({ backend: undefined, weight: 1 })]) });

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Pipeline {
  readonly runtime = new RuntimeState();
  readonly live = new LiveRegistry();
  private current: CompiledStages;
  private readonly unsub: () => void;

  constructor(private readonly o: PipelineOptions) {
    this.current = this.build();
    this.unsub = o.state.onUpdate(() => {
      try {
        this.current = this.build();
      } catch (err) {
        // A stage factory that throws must not take the proxy down: the previous version stays in force.
        o.log.error('pipeline stages failed to build; previous config version stays in force', { version: o.state.version, error: err });
        return;
      }
      const closed = this.live.reevaluate(this.current.authorizer, o.log);
      if (closed > 0) o.log.info('config version re-evaluated open connections', { version: this.current.version, closed });
    });
  }

  private build(): CompiledStages {
    const { state, factories, log } = this.o;
    const backends = new VersionBackends(state);
    const input: StageInput = { config: state.config, state, backends, runtime: this.runtime, log: log.child('stages') };
    return Object.freeze({
      version: state.version,
      backends,
      router: factories.router(input),
      authorizer: factories.authorizer(input),
      traffic: factories.traffic(input),
      observers: factories.observers.map((f) => f(input)),
    });
  }

  /** The stages of the config version in force now. */
  get stages(): CompiledStages {
    return this.current;
  }

  close(): void {
    this.unsub();
  }

  routeTo(ctx: ConnectionContext, ep: EndpointRef, backend: Backend): Route {
    return this.o.resolver.routeTo(ep, ctx.source, ctx.service && backend.service === ctx.service.service ? ctx.service : backend.service ? { service: backend.service, port: backend.service.ports.find((p) => p.port === backend.port)! } : undefined);
  }

  // ---- destination half --------------------------------------------------------------------------

  /** Authorize and admit one request on the destination side. undefined: go on to the pod. */
  destinationRequest(ctx: RequestContext, st: CompiledStages = this.current): LocalResponse | undefined {
    const d = st.authorizer.request(ctx);
    if (d.policy) ctx.outcome.policyName = d.policy;
    if (!d.allow) {
      this.o.agentMetrics.refused.inc({ direction: 'inbound', reason: 'denied' });
      return { status: 403, body: DENIED_BODY, grpcStatus: 7, grpcMessage: DENIED_BODY, flag: 'UAEX', policy: d.policy };
    }
    return st.traffic.admit(ctx);
  }

  /** Authorize and admit one connection on the destination side. undefined: go on. */
  destinationConnection(ctx: ConnectionContext, st: CompiledStages = this.current): LocalResponse | undefined {
    const d = st.authorizer.connection(ctx);
    if (!d.allow) {
      // Counted by the adapter that refuses the connection.
      return { status: 403, body: DENIED_BODY, flag: 'UAEX', policy: d.policy };
    }
    return st.traffic.admit(ctx);
  }

  /**
   * The destination half for a request that came through the tunnel (the source node parsed it, routed it
   * and picked this pod): authorize and admit it here, then send it to the pod, one attempt (retries and
   * timeouts are the source's). Its outcome is reported with `route.labels` (reporter="destination").
   */
  async deliver(ctx: RequestContext, ex: UpstreamExchange, route: Route): Promise<void> {
    const st = this.current;
    const o = ctx.outcome;
    ctx.labels = route.labels;
    try {
      this.o.tracing?.destination(ctx);
      const refusal = this.destinationRequest(ctx, st);
      if (refusal) return this.reply(ctx, ex, refusal);
      o.endpoint = `${route.ip}:${route.port}`;
      o.attempts = 1;
      const unregister = this.live.add({ ctx, close: () => ex.abort() });
      try {
        const r = await ex.send(route, withRequestHeaders(DELIVER_ACTION, this.o.tracing?.headers(ctx)), DELIVER_ACTION.backends[0]!);
        if (r.status > 0) {
          o.status = r.status;
          if (r.grpcStatus !== undefined) o.grpcStatus = r.grpcStatus;
          await ex.commit();
          return;
        }
        const [status, flag] = FAILURE_STATUS[r.error ?? 'reset'] ?? [503, 'UF'];
        if (flag) o.flags.push(flag);
        this.o.log.warn('http request failed at the pod', { reason: r.error ?? null, endpoint: o.endpoint, source: ctx.source.principal ?? null });
        this.reply(ctx, ex, { status });
      } finally {
        unregister();
      }
    } catch (err) {
      this.o.log.error('request pipeline failed unexpectedly', { error: err });
      if (o.status === 0) this.reply(ctx, ex, { status: 500 });
    } finally {
      this.finish(ctx, st);
    }
  }

  // ---- source half, L4 ---------------------------------------------------------------------------

  /**
   * Picks where a connection goes (TCP, or an HTTP Upgrade/CONNECT handed to the relay) and, for a pod on
   * this node, runs the destination half. Returns the plan, or the reason it cannot go anywhere.
   */
  planConnection(ctx: ConnectionContext, st: CompiledStages = this.current): L4Plan | { error: string; refusal?: LocalResponse } {
    const backend = addressedBackend({ backends: st.backends } as StageInput, ctx);
    const endpoint = st.traffic.pick(ctx, backend, []);
    if (!endpoint) return { error: 'no_endpoint' };
    const permit = st.traffic.acquire(ctx, backend, endpoint);
    if (!permit) return { error: 'overloaded' };
    if (isPendingPermit(permit)) {
      // Connections never queue (the stage only queues requests); should one be asked to, it is refused.
      permit.cancel();
      return { error: 'overloaded' };
    }
    const route = this.routeTo(ctx, endpoint, backend);
    if (permit.upstream) route.limits = permit.upstream;
    // the picked pod (L4: known from here on, whichever node it is on)
    ctx.destination = route.workload;
    ctx.destinationPort = route.port;
    if (route.kind === 'local' && route.workload) {
      const refusal = this.destinationConnection(ctx, st);
      if (refusal) {
        if (refusal.flag === 'UAEX') this.o.agentMetrics.refused.inc({ direction: 'inbound', reason: 'denied' });
        permit.release();
        return { error: 'denied', refusal };
      }
    } else if (route.kind === 'tunnel' && !ctx.source.principal) {
      permit.release();
      return { error: 'unknown_source' };
    }
    return { backend, endpoint, route, permit };
  }

  // ---- source half, HTTP -------------------------------------------------------------------------

  /** Runs one request through the source half (and the destination half when the pod is on this node). */
  async forward(ctx: RequestContext, ex: UpstreamExchange): Promise<void> {
    const st = this.current;
    const o = ctx.outcome;
    try {
      this.o.tracing?.source(ctx);
      const action = st.router.route(ctx);
      o.routeName = action.routeName;
      if (action.kind === 'respond') return this.reply(ctx, ex, action);
      const fault = st.traffic.fault(ctx);
      if (fault) {
        if (fault.delayMs) {
          o.flags.push('DI');
          await sleep(fault.delayMs);
        }
        if (fault.abort) {
          o.flags.push('FI');
          return this.reply(ctx, ex, fault.abort);
        }
      }
      await this.attempts(ctx, ex, st, action);
    } catch (err) {
      this.o.log.error('request pipeline failed unexpectedly', { error: err });
      if (o.status === 0) this.reply(ctx, ex, { status: 500 });
    } finally {
      this.finish(ctx, st);
    }
  }

  private async attempts(ctx: RequestContext, ex: UpstreamExchange, st: CompiledStages, action: ForwardAction): Promise<void> {
    const o = ctx.outcome;
    let timedOut = false;
    let gone = false;
    /** set while the request waits in a pending queue: a timeout or the client leaving takes it out */
    let waiting: PendingPermit | undefined;
    let overall: NodeJS.Timeout | undefined;
    if (action.requestTimeoutMs) {
      overall = setTimeout(() => {
        timedOut = true;
        if (waiting) waiting.cancel();
        else ex.abort();
      }, action.requestTimeoutMs);
    }
    // Stream idle timeout (TrafficPolicy timeouts.idle): the adapters touch() the timer on every byte either
    // way and the pipeline when a response head arrives, so it fires only after that long without any.
    let idled = false;
    if (action.idleTimeoutMs) {
      ctx.idleTimer = setTimeout(() => {
        idled = timedOut = true;
        if (waiting) waiting.cancel();
        else ex.abort();
      }, action.idleTimeoutMs);
    }

    let tried: string[] | undefined;
    let result: AttemptResult = { status: 0, error: 'no_backend', sent: false };
    let backend: Backend | undefined;
    let permit: Permit | undefined;
    let unregister: (() => void) | undefined;
    try {
      for (let attempt = 1; ; attempt++) {
        const wb = pickWeighted(action.backends);
        backend = wb?.backend;
        o.attempts = attempt;
        if (!wb || !backend) {
          result = { status: 0, error: 'no_backend', sent: false };
        } else {
          o.backend = backend.key;
          // A retry prefers an endpoint not tried yet and falls back to any (Istio's previous_hosts predicate).
          const ep = st.traffic.pick(ctx, backend, tried ?? []) ?? (tried ? st.traffic.pick(ctx, backend, []) : undefined);
          if (!ep) {
            result = { status: 0, error: 'no_healthy_upstream', sent: false };
          } else if (
            !(permit = await this.permit(st.traffic.acquire(ctx, backend, ep), ex, (w) => (waiting = w), () => (gone = true)))
          ) {
            result = timedOut ? { status: 0, error: 'timeout', sent: false } : { status: 0, error: gone ? 'reset' : 'overloaded', sent: false };
          } else if (timedOut || gone) {
            // granted just as the wait was cancelled
            permit.release();
            permit = undefined;
            result = { status: 0, error: timedOut ? 'timeout' : 'reset', sent: false };
          } else {
            const route = this.routeTo(ctx.connection, ep, backend);
            if (permit.upstream) route.limits = permit.upstream;
            ctx.destination = route.workload;
            ctx.destinationPort = route.port;
            ctx.labels = route.labels;
            ctx.destinationLabels = route.destinationLabels;
            o.endpoint = ep.id;
            if (route.kind === 'local' && route.workload) {
              // Same node: the destination half runs here, on the same parsed request.
              this.o.tracing?.destination(ctx);
              const refusal = this.destinationRequest(ctx, st);
              if (refusal) {
                permit.release();
                return this.reply(ctx, ex, refusal);
              }
              unregister = this.live.add({ ctx, close: () => ex.abort() });
            } else if (route.kind === 'tunnel' && !ctx.source.principal) {
              result = { status: 0, error: 'unknown_source', sent: false };
            }
            if (result.error !== 'unknown_source') {
              const t0 = performance.now();
              let perTry: NodeJS.Timeout | undefined;
              let tryTimedOut = false;
              if (action.backendRequestTimeoutMs) {
                perTry = setTimeout(() => {
                  tryTimedOut = true;
                  ex.abort();
                }, action.backendRequestTimeoutMs);
              }
              result = await ex.send(route, withRequestHeaders(withStageHeaders(ctx, action), this.o.tracing?.headers(ctx)), wb);
              if (result.status > 0) ctx.touch();
              clearTimeout(perTry);
              if (tryTimedOut && result.status === 0) result = { status: 0, error: 'timeout', sent: result.sent };
              st.traffic.feedback(ctx, backend, ep, result, performance.now() - t0);
            }
            (tried ??= []).push(ep.id);
          }
        }
        if (timedOut || gone) break;
        const delay = action.retry && ex.replayable ? action.retry.next(ctx, attempt, result) : undefined;
        if (delay === undefined) break;
        if (result.status > 0) ex.discard();
        permit?.release();
        permit = undefined;
        unregister?.();
        unregister = undefined;
        if (delay > 0) await sleep(delay);
        if (timedOut || gone) break;
      }
      // The client went away while its request waited for a slot: nobody to answer.
      if (gone && result.status === 0 && !result.sent && !timedOut) return;
      if (timedOut) {
        if (result.status > 0) ex.discard();
        o.flags.push(idled ? 'SI' : 'UT');
        if (await this.fallBack(ctx, ex, st, backend, { status: 0, error: 'timeout', sent: result.sent })) return;
        return this.reply(ctx, ex, { status: 504, body: idled ? 'stream timeout' : 'upstream request timeout' });
      }
      // A 5xx after the retries: the TrafficPolicy fallback may replace it (the response is still held).
      if (result.status >= 500 && (await this.fallBack(ctx, ex, st, backend, result))) return;
      if (result.status > 0) {
        o.status = result.status;
        if (result.grpcStatus !== undefined) o.grpcStatus = result.grpcStatus;
        await ex.commit();
        if (timedOut) o.flags.push(idled ? 'SI' : 'UT');
        return;
      }
      if (o.attempts > 1) o.flags.push('URX');
      if (await this.fallBack(ctx, ex, st, backend, result)) return;
      const [status, flag] = FAILURE_STATUS[result.error ?? 'reset'] ?? [503, 'UF'];
      if (flag) o.flags.push(flag);
      this.o.log.warn('http request failed upstream', { reason: result.error ?? null, destination: `${ctx.connection.original.ip}:${ctx.connection.original.port}`, endpoint: o.endpoint ?? null, attempts: o.attempts });
      return this.reply(ctx, ex, status === 503 && result.error === 'overloaded' ? { status, headers: [['x-weft-overloaded', 'true']] } : { status, body: status === 403 ? DENIED_BODY : undefined });
    } finally {
      clearTimeout(overall);
      clearTimeout(ctx.idleTimer);
      ctx.idleTimer = undefined;
      permit?.release();
      unregister?.();
    }
  }

  /**
   * The permit the traffic stage gave, waited for when the request was queued (http1MaxPendingRequests).
   * While it waits, `waiting` holds the pending permit so a timeout can cancel it, and the adapter watches
   * the client: one that leaves takes the request out of the queue (`gone`).
   */
  private async permit(got: Permit | PendingPermit | undefined, ex: UpstreamExchange, waiting: (w: PendingPermit | undefined) => void, gone: () => void): Promise<Permit | undefined> {
    if (!got || !isPendingPermit(got)) return got;
    waiting(got);
    ex.onGone?.(() => {
      gone();
      got.cancel();
    });
    try {
      return await got.wait;
    } finally {
      ex.onGone?.(undefined);
      waiting(undefined);
    }
  }

  /**
   * The TrafficPolicy fallback for a primary that failed after its retries (issue 13): a fixed answer, or
   * one attempt at the fallback Service for a replayable request. True when the fallback answered; false
   * leaves `result` to be returned as it came (a held 5xx response is only dropped once the fallback Service
   * has an endpoint and a circuit slot). The answer carries x-weft-fallback.
   */
  private async fallBack(ctx: RequestContext, ex: UpstreamExchange, st: CompiledStages, backend: Backend | undefined, result: AttemptResult): Promise<boolean> {
    const fb = st.traffic.fallback(ctx, backend, result);
    if (!fb) return false;
    const o = ctx.outcome;
    if (fb.kind === 'respond') {
      if (result.status > 0) ex.discard();
      o.policyName = fb.name;
      this.reply(ctx, ex, fb.response);
      return true;
    }
    if (!ex.replayable) return false;
    const ep = st.traffic.pick(ctx, fb.backend, []);
    const got = ep && st.traffic.acquire(ctx, fb.backend, ep);
    // A fallback does not wait in the fallback Service's pending queue: the primary's answer is returned instead.
    if (got && isPendingPermit(got)) got.cancel();
    const permit = got && !isPendingPermit(got) ? got : undefined;
    if (!ep || !permit) return false;
    if (result.status > 0) ex.discard();
    let unregister: (() => void) | undefined;
    try {
      o.policyName = fb.name;
      o.backend = fb.backend.key;
      o.endpoint = ep.id;
      o.attempts++;
      const route = this.routeTo(ctx.connection, ep, fb.backend);
      if (permit.upstream) route.limits = permit.upstream;
      ctx.destination = route.workload;
      ctx.destinationPort = route.port;
      ctx.labels = route.labels;
      ctx.destinationLabels = route.destinationLabels;
      if (route.kind === 'local' && route.workload) {
        this.o.tracing?.destination(ctx);
        const refusal = this.destinationRequest(ctx, st);
        if (refusal) {
          this.reply(ctx, ex, { ...refusal, headers: [...(refusal.headers ?? []), [FALLBACK_HEADER, fb.name]] });
          return true;
        }
        unregister = this.live.add({ ctx, close: () => ex.abort() });
      } else if (route.kind === 'tunnel' && !ctx.source.principal) {
        return false;
      }
      const action: ForwardAction = { kind: 'forward', backends: [{ backend: fb.backend, weight: 1 }], responseHeaders: { set: [[FALLBACK_HEADER, fb.name]] } };
      const t0 = performance.now();
      const r = await ex.send(route, withRequestHeaders(action, this.o.tracing?.headers(ctx)), action.backends[0]!);
      st.traffic.feedback(ctx, fb.backend, ep, r, performance.now() - t0);
      if (r.status > 0) {
        o.status = r.status;
        if (r.grpcStatus !== undefined) o.grpcStatus = r.grpcStatus;
        await ex.commit();
      } else {
        const [status, flag] = FAILURE_STATUS[r.error ?? 'reset'] ?? [503, 'UF'];
        if (flag) o.flags.push(flag);
        this.reply(ctx, ex, { status, headers: [[FALLBACK_HEADER, fb.name]] });
      }
      return true;
    } finally {
      permit.release();
      unregister?.();
    }
  }

  private reply(ctx: RequestContext, ex: UpstreamExchange, r: LocalResponse): void {
    const o = ctx.outcome;
    o.status = r.status;
    if (r.flag) o.flags.push(r.flag);
    if (r.policy) o.policyName = r.policy;
    if (ctx.protocol === 'grpc' && r.grpcStatus !== undefined) {
      // gRPC answers an error as HTTP 200 with grpc-status (a trailers-only response): response_code is what
      // went on the wire, as Istio reports it.
      o.grpcStatus = r.grpcStatus;
      o.status = 200;
    }
    ex.reply(r);
  }

  /** The outcome: metrics, observers. Called once per request on the source side (and by the destination adapters). */
  finish(ctx: RequestContext, st: CompiledStages = this.current): void {
    const o = ctx.outcome;
    o.endMs = performance.now();
    if (o.status > 0) {
      const grpc = ctx.protocol === 'grpc';
      const protocol = grpc ? 'grpc' : 'http';
      const ms = o.endMs - o.startMs;
      const flags = flagsLabel(o.flags);
      const grpcStatus = grpcStatusOf(grpc, o.grpcStatus, o.status);
      if (ctx.labels) this.o.metrics.request(ctx.labels, protocol, o.status, ms, o.bytesReceived, o.bytesSent, flags, grpcStatus);
      if (ctx.destinationLabels) this.o.metrics.request(ctx.destinationLabels, protocol, o.status, ms, o.bytesReceived, o.bytesSent, flags, grpcStatus);
    }
    try {
      this.o.tracing?.end(ctx);
    } catch (err) {
      this.o.log.warn('request tracing failed', { error: err });
    }
    for (const obs of st.observers) {
      try {
        obs.request?.(ctx);
      } catch (err) {
        this.o.log.warn('pipeline observer failed', { error: err });
      }
    }
  }

  /** Outcome of an L4 connection: observers (metrics are recorded by the relay's owner). */
  finishConnection(ctx: ConnectionContext, received: number, sent: number, st: CompiledStages = this.current): void {
    for (const obs of st.observers) {
      try {
        obs.connection?.(ctx, received, sent);
      } catch (err) {
        this.o.log.warn('pipeline observer failed', { error: err });
      }
    }
  }
}

/** The route's action, with the response header edits the stages asked for on this request (a sticky cookie). */
function withStageHeaders(ctx: RequestContext, action: ForwardAction): ForwardAction {
  const extra = ctx.attr<HeaderEdits>(RESPONSE_HEADERS_ATTR);
  if (!extra) return action;
  const h = action.responseHeaders;
  return { ...action, responseHeaders: { set: [...(h?.set ?? []), ...(extra.set ?? [])], add: [...(h?.add ?? []), ...(extra.add ?? [])], ...(h?.remove ? { remove: h.remove } : {}) } };
}

/** The action with request header edits appended (the trace context for the next hop); the route's come first. */
function withRequestHeaders(action: ForwardAction, extra: HeaderEdits | undefined): ForwardAction {
  if (!extra) return action;
  const h = action.requestHeaders;
  if (!h) return { ...action, requestHeaders: extra };
  return { ...action, requestHeaders: { set: [...(h.set ?? []), ...(extra.set ?? [])], add: [...(h.add ?? []), ...(extra.add ?? [])], remove: [...(h.remove ?? []), ...(extra.remove ?? [])] } };
}

function isPendingPermit(p: Permit | PendingPermit): p is PendingPermit {
  return 'wait' in p;
}

/** Weighted choice among a route's backends (weight 0 gets nothing); undefined when all weights are 0. */
export function pickWeighted(bs: readonly WeightedBackend[]): WeightedBackend | undefined {
  if (bs.length === 1) return bs[0]!.weight > 0 ? bs[0] : undefined;
  let total = 0;
  for (const b of bs) total += b.weight;
  if (total <= 0) return undefined;
  let r = Math.random() * total;
  for (const b of bs) {
    r -= b.weight;
    if (r < 0 && b.weight > 0) return b;
  }
  for (let i = bs.length - 1; i >= 0; i--) if (bs[i]!.weight > 0) return bs[i];
  return undefined;
}
