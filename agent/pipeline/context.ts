// What a stage sees: one ConnectionContext per proxied connection (L4) and one RequestContext per HTTP
// request or HTTP/2 stream. Built by the protocol adapters (HTTP/1 codec, HTTP/2, tunnel inbound), read by
// every stage, and filled in with the outcome as the request goes. Plain objects with fixed shapes: no
// per-request closures, nothing computed that no stage asks for.
import type { OriginalDestination } from '../../common/capture.js';
import type { Workload } from '../../common/mesh.js';
import type { ServiceMatch } from '../state/mesh-state.js';
import type { PeerLabels } from '../metrics/istio.js';

export type HttpProtocol = 'http1' | 'http2' | 'grpc';
export type ConnectionProtocol = 'tcp' | 'http1' | 'http2';
/** Which half of the pipeline runs: the caller's node (source) or the destination pod's node. */
export type Side = 'source' | 'destination';

/**
 * Who sent the traffic. For a meshed pod the identity comes from the kernel (cgroup id of the socket,
 * same node) or from the verified peer certificate (tunnel), never from an IP address.
 */
export interface SourceInfo {
  /** the source pod: known on its own node (cgroup), and on the destination node when it is on the same node */
  readonly workload: Workload | undefined;
  /** SPIFFE ID; undefined for a caller outside the mesh */
  readonly principal: string | undefined;
  readonly namespace: string | undefined;
  /** the source address as seen (only meaningful as an address, never as an identity for a meshed pod) */
  readonly ip: string;
  /** how the identity was established */
  readonly identity: 'cgroup' | 'mtls' | 'none';
  /**
   * The key upstream connections are pooled under: one source pod never rides on a connection or HTTP/2
   * session opened for another (pod uid when known, else the principal, else the address).
   */
  readonly poolKey: string;
}

/** Where a connection was going, and (on the destination side, or once picked) which pod gets it. */
export interface ConnectionContext {
  readonly id: number;
  readonly side: Side;
  protocol: ConnectionProtocol;
  readonly source: SourceInfo;
  /** the original destination the client connected to (service VIP or pod IP) */
  readonly original: OriginalDestination | { ip: string; port: number };
  /** the Service whose VIP:port was called, if any */
  readonly service: ServiceMatch | undefined;
  /** destination pod and port: known on the destination side; on the source side after pick (L4) */
  destination: Workload | undefined;
  destinationPort: number;
  /** opaque data the stages may hang off the connection (e.g. a consistent-hash key); keys are stage names */
  readonly attrs: Map<string, unknown>;
}

/** Response flags, Envoy's names (they end up in the access log). */
export type ResponseFlag =
  | 'UH' // no healthy upstream
  | 'UF' // upstream connection failure
  | 'UO' // upstream overflow (circuit breaking)
  | 'NR' // no route configured
  | 'URX' // upstream retry limit exceeded
  | 'UT' // upstream request timeout
  | 'SI' // stream idle timeout (TrafficPolicy timeouts.idle)
  | 'UC' // upstream connection termination
  | 'UR' // upstream remote reset
  | 'DC' // downstream connection termination
  | 'RL' // rate limited
  | 'UAEX' // unauthorized (external/authz decision)
  | 'FI' // fault injected (abort)
  | 'DI' // fault injected (delay)
  | 'DPE'; // downstream protocol error

/**
 * The request's trace context as this proxy forwards it (agent/observe/tracing.ts); undefined while
 * tracing is off, when the proxy leaves trace headers as they came.
 */
export interface RequestTrace {
  /** 32 hex digits: the caller's trace id, or the one this proxy started */
  readonly traceId: string;
  readonly sampled: boolean;
}

export interface Outcome {
  /** the status sent to the client (0 until known; gRPC errors keep the HTTP status, grpc-status is in grpcStatus) */
  status: number;
  grpcStatus: number | undefined;
  flags: ResponseFlag[];
  /** the route (HTTPRoute/GRPCRoute rule) that matched, "<ns>/<name>#<rule>" */
  routeName: string | undefined;
  /** the policy that decided (authz allow/deny, rate limit, fault), for logs and metrics */
  policyName: string | undefined;
  /** backend key ("<ns>/<svc>:<port>" or "<ip>:<port>") and endpoint ("ip:port") of the last attempt */
  backend: string | undefined;
  endpoint: string | undefined;
  attempts: number;
  bytesReceived: number;
  bytesSent: number;
  /** performance.now() at the start, and at the end of the exchange */
  startMs: number;
  endMs: number;
}

export function newOutcome(): Outcome {
  return { status: 0, grpcStatus: undefined, flags: [], routeName: undefined, policyName: undefined, backend: undefined, endpoint: undefined, attempts: 0, bytesReceived: 0, bytesSent: 0, startMs: performance.now(), endMs: 0 };
}

/** One HTTP request (HTTP/1.1 message or HTTP/2 stream; gRPC is HTTP/2 with content-type application/grpc). */
export class RequestContext {
  readonly outcome: Outcome = newOutcome();
  /** opaque per-request data for stages (e.g. the route's retry state); keys are stage names */
  attrs: Map<string, unknown> | undefined;
  /**
   * The destination pod and port of this request: on the destination side, the pod the connection was
   * delivered to; on the source side, the endpoint picked for the current attempt.
   */
  destination: Workload | undefined;
  destinationPort: number;
  /** metric labels of the current attempt's peer (set when an endpoint is picked, or by the destination adapter) */
  labels: PeerLabels | undefined;
  /** same node: the destination half's labels (reporter="destination"), reported too when set */
  destinationLabels: PeerLabels | undefined;
  /** set by the pipeline's tracing when it is on (agent/observe/tracing.ts) */
  trace: RequestTrace | undefined;

  constructor(
    readonly connection: ConnectionContext,
    readonly protocol: HttpProtocol,
    readonly method: string,
    /** the request target as sent (origin form, query included); for HTTP/2 the :path */
    readonly path: string,
    /** Host header or :authority */
    readonly authority: string,
    readonly scheme: 'http' | 'https',
    /** the header list as received, [name, value, name, value, ...], original case and order (no pseudo-headers) */
    readonly rawHeaders: readonly string[],
  ) {
    this.destination = connection.destination;
    this.destinationPort = connection.destinationPort;
    this.labels = undefined;
    this.destinationLabels = undefined;
    this.trace = undefined;
    this.idleTimer = undefined;
  }

  get source(): SourceInfo {
    return this.connection.source;
  }

  get side(): Side {
    return this.connection.side;
  }

  /** A header's value by lower-case name; repeated fields joined with ", " (RFC 9110 §5.3). */
  header(lowerName: string): string | undefined {
    const raw = this.rawHeaders;
    let out: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i]!;
      if (n.length === lowerName.length && n.toLowerCase() === lowerName) out = out === undefined ? raw[i + 1]! : `${out}, ${raw[i + 1]!}`;
    }
    return out;
  }

  /** the pipeline's stream idle timer while one runs (TrafficPolicy timeouts.idle); adapters touch() it on every byte either way */
  idleTimer: NodeJS.Timeout | undefined;

  /** Bytes moved either way on this request: its idle timer starts again. */
  touch(): void {
    this.idleTimer?.refresh();
  }

  attr<T>(key: string): T | undefined {
    return this.attrs?.get(key) as T | undefined;
  }

  setAttr(key: string, value: unknown): void {
    (this.attrs ??= new Map()).set(key, value);
  }
}

let nextConnectionId = 1;

export function newConnectionContext(init: Omit<ConnectionContext, 'id' | 'attrs'>): ConnectionContext {
  return { id: nextConnectionId++, attrs: new Map(), ...init };
}

/** SourceInfo for a pod this node knows (same node: from its cgroup). */
export function sourceFromWorkload(w: Workload | undefined, principal: string | undefined, ip: string): SourceInfo {
  if (!w) return { workload: undefined, principal: undefined, namespace: undefined, ip, identity: 'none', poolKey: `ip:${ip}` };
  return { workload: w, principal, namespace: w.namespace, ip, identity: 'cgroup', poolKey: `pod:${w.uid}` };
}

/** SourceInfo for a caller proven by its tunnel certificate (cross node). */
export function sourceFromPeer(principal: string, ip: string, workload?: Workload): SourceInfo {
  const m = /\/ns\/([^/]+)\//.exec(principal);
  return { workload, principal, namespace: m?.[1], ip, identity: 'mtls', poolKey: workload ? `pod:${workload.uid}` : `id:${principal}` };
}
