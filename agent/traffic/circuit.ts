// Circuit breaking, Istio's connectionPool limits of one node proxy towards a whole backend: beyond a limit
// a request is answered at once (503 + x-weft-overloaded: true) and a TCP connection is refused — there is
// no queue at all, so nothing waits without bound. http2MaxRequests bounds concurrent requests (any HTTP
// version, as Envoy's max_requests); maxConnections bounds TCP connections, and HTTP/1.1 requests in flight
// (each holds one upstream connection); maxRetries bounds retries in flight. The settings for the
// connections themselves (connectTimeout, maxRequestsPerConnection, idleTimeout) ride on the slot to the
// adapter that opens and pools them (Permit.upstream).
import type { CompiledConnectionPool } from '../../common/policy/traffic.js';
import type { UpstreamLimits } from '../pipeline/stages.js';
import type { BackendState } from './backend-state.js';
import type { EndpointState } from './endpoint-state.js';

export type SlotKind = 'tcp' | 'http1' | 'http2';

export interface Slot {
  release(): void;
  readonly upstream?: UpstreamLimits;
}

const LIMITS = new WeakMap<CompiledConnectionPool, UpstreamLimits | null>();

/** The connection settings a pool sets, or undefined when it sets none (the proxy's defaults apply); once per compiled pool. */
export function upstreamLimits(p: CompiledConnectionPool | undefined): UpstreamLimits | undefined {
  if (!p) return undefined;
  let l = LIMITS.get(p);
  if (l === undefined) LIMITS.set(p, (l = limitsOf(p)));
  return l ?? undefined;
}

function limitsOf(p: CompiledConnectionPool): UpstreamLimits | null {
  if (p.connectTimeoutMs === undefined && !p.maxRequestsPerConnection && p.idleTimeoutMs === undefined) return null;
  return Object.freeze({
    ...(p.connectTimeoutMs !== undefined ? { connectTimeoutMs: p.connectTimeoutMs } : {}),
    ...(p.maxRequestsPerConnection ? { maxRequestsPerConnection: p.maxRequestsPerConnection } : {}),
    ...(p.idleTimeoutMs !== undefined ? { idleTimeoutMs: p.idleTimeoutMs } : {}),
  });
}

class Held implements Slot {
  private done = false;
  constructor(
    private readonly b: BackendState,
    private readonly e: EndpointState,
    private readonly kind: SlotKind,
    private readonly retry: boolean,
    readonly upstream: UpstreamLimits | undefined,
  ) {}

  release(): void {
    if (this.done) return;
    this.done = true;
    const b = this.b;
    if (this.kind === 'tcp') b.activeConnections--;
    else b.activeRequests--;
    if (this.retry) b.activeRetries--;
    this.e.outstanding--;
  }
}

/** Why a slot was refused, for the log and the admin page; undefined when granted. */
export type Overflow = 'max_connections' | 'max_requests' | 'max_retries';

export function overflow(p: CompiledConnectionPool | undefined, b: BackendState, kind: SlotKind, retry: boolean): Overflow | undefined {
  if (!p) return undefined;
  if (kind === 'tcp') {
    if (p.maxConnections !== undefined && b.activeConnections >= p.maxConnections) return 'max_connections';
    return undefined;
  }
  if (retry && p.maxRetries !== undefined && b.activeRetries >= p.maxRetries) return 'max_retries';
  if (p.http2MaxRequests !== undefined && b.activeRequests >= p.http2MaxRequests) return 'max_requests';
  if (kind === 'http1' && p.maxConnections !== undefined && b.activeRequests >= p.maxConnections) return 'max_connections';
  return undefined;
}

/** A slot for one request/connection to endpoint `e`, or undefined when over a limit (counted). */
export function acquire(p: CompiledConnectionPool | undefined, b: BackendState, e: EndpointState, kind: SlotKind, retry: boolean, now: number): Slot | undefined {
  if (overflow(p, b, kind, retry)) {
    b.overloaded++;
    e.overloaded++;
    return undefined;
  }
  if (kind === 'tcp') b.activeConnections++;
  else b.activeRequests++;
  if (retry) b.activeRetries++;
  e.outstanding++;
  e.requests++;
  e.lastUsedMs = now;
  return new Held(b, e, kind, retry, upstreamLimits(p));
}

/** Whether any limit is reached now (the "circuit open" the admin page shows). */
export function circuitOpen(p: CompiledConnectionPool | undefined, b: BackendState): boolean {
  if (!p) return false;
  return (p.maxConnections !== undefined && Math.max(b.activeConnections, b.activeRequests) >= p.maxConnections) || (p.http2MaxRequests !== undefined && b.activeRequests >= p.http2MaxRequests);
}
