// The stage API: the interfaces the policy features implement and the pipeline calls, in the design's
// order: route → authorize → traffic policy → pick endpoint → forward → outcome. Every stage object is
// built once per config version by its factory (from immutable compiled tables) and keeps nothing of its
// own between versions: runtime state (balancer load, ejections, budgets, buckets, circuit counters)
// lives in RuntimeState, keyed by stable ids, and survives versions. All calls are synchronous: a stage
// that needs time (a fault delay, a retry backoff) returns how long, and the pipeline waits.
import type { Logger } from '../../common/log.js';
import type { MeshConfig, Service, Workload } from '../../common/mesh.js';
import type { MeshState } from '../state/mesh-state.js';
import type { ConnectionContext, RequestContext, ResponseFlag } from './context.js';
import type { RuntimeState } from './runtime.js';

// ---- What requests go to -------------------------------------------------------------------------

/** One pod:port a request or connection may be sent to. Identity: `id` ("ip:port"), stable across versions. */
export interface EndpointRef {
  readonly id: string;
  readonly ip: string;
  readonly port: number;
  readonly workload: Workload | undefined;
  /** the node the pod runs on, when known */
  readonly nodeName: string | undefined;
}

/** A set of endpoints a route sends to: a Service port, or one destination called directly by pod IP. */
export interface Backend {
  /** stable id across versions: "<ns>/<svc>:<port>" for a Service port, "<ip>:<port>" for a direct destination */
  readonly key: string;
  readonly service: Service | undefined;
  /** the Service port called (for a direct destination: the port) */
  readonly port: number;
  /** ready endpoints, at the target port; shared, immutable, rebuilt per config version */
  readonly endpoints: readonly EndpointRef[];
}

/** Backends of this config version, for stage factories (a route resolves its backendRefs through it). */
export interface BackendTable {
  /** a Service port ("<ns>/<name>", port), undefined when no such Service or port exists */
  service(namespacedName: string, port: number): Backend | undefined;
  /** a destination called by pod IP (or outside the mesh) */
  direct(ip: string, port: number): Backend;
}

// ---- Replies the proxy makes itself --------------------------------------------------------------

/** An answer from the proxy (403 from authz, 429 rate limit, 404 no route, 503 overloaded, fault abort, fixed fallback). */
export interface LocalResponse {
  status: number;
  /** extra response headers, e.g. [['retry-after', '1']] */
  headers?: ReadonlyArray<readonly [string, string]>;
  body?: string;
  /** for gRPC requests: answer with this grpc-status (HTTP 200 + trailers-only), e.g. 7 PERMISSION_DENIED */
  grpcStatus?: number;
  grpcMessage?: string;
  flag?: ResponseFlag;
  /** the policy that produced it, for logs and metrics */
  policy?: string;
}

// ---- Router (issue 12, C: agent/routing/**) ------------------------------------------------------

export interface HeaderEdits {
  set?: ReadonlyArray<readonly [string, string]>;
  add?: ReadonlyArray<readonly [string, string]>;
  remove?: readonly string[];
}

export interface WeightedBackend {
  /** undefined: a backendRef that did not resolve; its share of requests is answered 500 */
  backend: Backend | undefined;
  weight: number;
  /** per-backendRef request header edits (applied after the rule's) */
  requestHeaders?: HeaderEdits;
  /** per-backendRef response header edits (applied after the rule's) */
  responseHeaders?: HeaderEdits;
}

/** What one attempt came to: a response head, or a failure before any response byte. */
export interface AttemptResult {
  /** HTTP status of the response head; 0 when the attempt failed before one */
  status: number;
  /** gRPC: grpc-status from a trailers-only response head, when present */
  grpcStatus?: number;
  /** failure before a response: connect_failed, connect_timeout, reset, timeout (per try), denied, unknown_source, tunnel_* */
  error?: string;
  /** whether any request byte reached the upstream (a connect failure never did) */
  sent: boolean;
}

/** The route's retry policy (router owns retries, as Envoy's router filter does). */
export interface RetryPolicy {
  /**
   * Called after attempt number `attempt` (1 = the first try) failed or answered; returns the delay in ms
   * before the next attempt, or undefined to stop and return `result` as it came. The retry budget is
   * checked here (C keeps it in RuntimeState). Only called when the request can be replayed.
   */
  next(ctx: RequestContext, attempt: number, result: AttemptResult): number | undefined;
}

export interface ForwardAction {
  kind: 'forward';
  /** "<ns>/<name>#<rule index>" of the matching route rule; undefined for the default route */
  routeName?: string;
  backends: readonly WeightedBackend[];
  /** whole exchange, retries included (Gateway API timeouts.request); undefined/0: none */
  requestTimeoutMs?: number;
  /** one attempt (timeouts.backendRequest); undefined/0: none */
  backendRequestTimeoutMs?: number;
  /**
   * stream idle timeout (TrafficPolicy timeouts.idle, Envoy's stream idle timeout): no byte either way for
   * this long ends the request, 504 before a response started, a reset after; undefined: none
   */
  idleTimeoutMs?: number;
  retry?: RetryPolicy;
  requestHeaders?: HeaderEdits;
  responseHeaders?: HeaderEdits;
  /** URLRewrite: new request target and/or Host/:authority */
  rewrite?: { path?: string; authority?: string };
}

export interface RespondAction extends LocalResponse {
  kind: 'respond';
  routeName?: string;
}

export type RouteAction = ForwardAction | RespondAction;

export interface Router {
  /** Source side, per request: where it goes (or the local answer: 404 no match, redirect, ...). */
  route(ctx: RequestContext): RouteAction;
}

// ---- Authorizer (issue 11, B: agent/authz/**) ----------------------------------------------------

export interface AuthzDecision {
  allow: boolean;
  /** the deciding policy ("<ns>/<name>"), when a policy decided */
  policy?: string;
  /** AUDIT policies that matched (never change the decision) */
  audit?: readonly string[];
  /** dry-run policies and what they would have decided */
  dryRun?: ReadonlyArray<{ policy: string; allow: boolean }>;
}

/**
 * Destination side only, on the destination pod's node, for every way traffic arrives (tunnel, same node,
 * outside the mesh). `connection` runs once per connection (protocol says whether HTTP will follow, so an
 * L7-only ALLOW rule can decide per request instead); `request` runs per HTTP request / HTTP/2 stream,
 * also on kept-alive connections, one by one. Both also run again for open connections and in-flight
 * streams when the config version changes (LiveRegistry): what is now denied is closed.
 */
export interface Authorizer {
  connection(ctx: ConnectionContext): AuthzDecision;
  request(ctx: RequestContext): AuthzDecision;
  /**
   * Optional: decides an open connection or in-flight request again when a new config version arrives
   * (without counting it as a new admission); default: `connection` / `request`.
   */
  reevaluate?(ctx: ConnectionContext | RequestContext): AuthzDecision;
}

// ---- Traffic policy (issue 13, D: agent/traffic/**) ----------------------------------------------

export interface FaultAction {
  /** wait this long before going on (Istio fault.delay) */
  delayMs?: number;
  /** answer this instead of forwarding (Istio fault.abort) */
  abort?: LocalResponse;
}

/** A circuit-breaker slot: released exactly once when the request (or connection) is done. */
/** The Service's upstream connection settings (TrafficPolicy connectionPool) for the attempt holding a permit. */
export interface UpstreamLimits {
  connectTimeoutMs?: number;
  /** requests or streams per upstream connection; absent: no limit */
  maxRequestsPerConnection?: number;
  idleTimeoutMs?: number;
  /** a TCP connection (or upgraded stream) to the Service with no byte either way for this long is reset (timeouts.idle); absent: the proxy's own */
  streamIdleMs?: number;
}

export interface Permit {
  release(): void;
  /** set when the Service's TrafficPolicy sets any of them; the adapters apply them to the connections they open */
  readonly upstream?: UpstreamLimits;
}

/** A request waiting for a circuit slot (connectionPool.http.http1MaxPendingRequests): the permit once one is free. */
export interface PendingPermit {
  /** the permit once a slot is released to the request; undefined when it stopped waiting (cancel) */
  readonly wait: Promise<Permit | undefined>;
  /** stops waiting (client gone, timeout); a permit granted meanwhile still comes through `wait` and must be released */
  cancel(): void;
}

/** Per-request attribute (ctx.setAttr) a stage sets to add response header edits to the answer (e.g. a sticky cookie). */
export const RESPONSE_HEADERS_ATTR = 'stage.responseHeaders';
/** Header on an answer a TrafficPolicy fallback produced: the fallback Service ("<ns>/<name>") or "response". */
export const FALLBACK_HEADER = 'x-weft-fallback';

export type FallbackAction = { kind: 'backend'; backend: Backend; name: string } | { kind: 'respond'; response: LocalResponse; name: string };

export interface TrafficStages {
  /** Source side, per request, after routing: fault injection. */
  fault(ctx: RequestContext): FaultAction | undefined;
  /** Admission (local rate limit): destination side per request and per connection; a refusal is answered (L4: reset). */
  admit(ctx: RequestContext | ConnectionContext): LocalResponse | undefined;
  /** Load balancing: one endpoint of the backend, skipping ejected ones and those in `tried`; undefined: none healthy. */
  pick(ctx: RequestContext | ConnectionContext, backend: Backend, tried: readonly string[]): EndpointRef | undefined;
  /**
   * Circuit breaking: a slot for one request/connection to the endpoint; a PendingPermit when an HTTP/1.1
   * request waits for one (only requests, never TCP connections); undefined: over a limit (503 +
   * x-weft-overloaded / TCP refused).
   */
  acquire(ctx: RequestContext | ConnectionContext, backend: Backend, endpoint: EndpointRef): Permit | PendingPermit | undefined;
  /** Outcome of each attempt, for the balancer (latency, load) and outlier detection (5xx, gateway errors). */
  feedback(ctx: RequestContext | ConnectionContext, backend: Backend, endpoint: EndpointRef, result: AttemptResult, latencyMs: number): void;
  /** After the last attempt failed (or no endpoint / overloaded): send it elsewhere or answer, or undefined. */
  fallback(ctx: RequestContext, backend: Backend | undefined, result: AttemptResult): FallbackAction | undefined;
}

// ---- Outcome observers (access log, spans: E, agent/observe/**) ----------------------------------

export interface Observer {
  /** once per request, when its exchange ended (ctx.outcome complete); both sides */
  request?(ctx: RequestContext): void;
  /** once per L4 connection (TCP or the connection carrying HTTP), when it closed */
  connection?(ctx: ConnectionContext, bytesReceived: number, bytesSent: number): void;
}

/**
 * Trace context and one span per proxy hop (agent/observe/tracing.ts), configured per agent (not per config
 * version); absent when tracing is off.
 */
export interface RequestTracing {
  /** source half, as the request arrives: read or start its context, decide sampling, open the CLIENT span */
  source(ctx: RequestContext): void;
  /** destination half (through the tunnel, or same node after `source`): the SERVER span, once per request */
  destination(ctx: RequestContext): void;
  /** the header edits that carry the context to the next hop (the pod, or the destination's proxy) */
  headers(ctx: RequestContext): HeaderEdits | undefined;
  /** the exchange ended (ctx.outcome complete): this hop's spans end and go to export */
  end(ctx: RequestContext): void;
}

// ---- Factories: built once per config version ----------------------------------------------------

export interface StageInput {
  config: MeshConfig;
  /** indexed view of `config` (services, workloads, nodes); this node's name is state.nodeName */
  state: MeshState;
  backends: BackendTable;
  /** state that survives config versions, keyed by stable ids */
  runtime: RuntimeState;
  log: Logger;
}

export interface StageFactories {
  router(input: StageInput): Router;
  authorizer(input: StageInput): Authorizer;
  traffic(input: StageInput): TrafficStages;
  observers: ReadonlyArray<(input: StageInput) => Observer>;
}

/** One config version's stages (immutable; a request keeps the version it started with). */
export interface CompiledStages {
  readonly version: number;
  readonly backends: BackendTable;
  readonly router: Router;
  readonly authorizer: Authorizer;
  readonly traffic: TrafficStages;
  readonly observers: readonly Observer[];
}
