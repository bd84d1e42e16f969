// Circuit breaking, Istio's connectionPool limits of one node proxy towards a whole backend: beyond a limit
// a request is answered at once (503 + x-weft-overloaded: true) and a TCP connection is refused.
// http2MaxRequests bounds concurrent requests (any HTTP version, as Envoy's max_requests); maxConnections
// bounds TCP connections, and HTTP/1.1 requests in flight (each holds one upstream connection); maxRetries
// bounds retries in flight. The one wait there is: with http1MaxPendingRequests set, an HTTP/1.1 request
// that finds maxConnections reached waits in the backend's bounded FIFO queue (pending.ts) for the next
// released slot, and is refused at once only when that queue is full — nothing waits without bound. The
// settings for the connections themselves (connectTimeout, maxRequestsPerConnection, idleTimeout) ride on
// the slot to the adapter that opens and pools them (Permit.upstream).
import type { CompiledConnectionPool, CompiledTraffic } from '../../common/policy/traffic.js';
import type { UpstreamLimits } from '../pipeline/stages.js';
import type { BackendState } from './backend-state.js';
import type { EndpointState } from './endpoint-state.js';
import type { Waiter } from './pending.js';

export type SlotKind = 'tcp' | 'http1' | 'http2';

export interface Slot {
  release(): void;
  readonly upstream?: UpstreamLimits;
}

/** A request waiting in the pending queue for a slot. */
export interface PendingSlot {
  /** the slot once one is released to it; undefined when it left the queue (cancel) */
  readonly wait: Promise<Slot | undefined>;
  /** leaves the queue (client gone, timeout); harmless once granted: the slot then still comes through `wait` */
  cancel(): void;
}

export function isPending(s: Slot | PendingSlot): s is PendingSlot {
  return 'wait' in s;
}

const LIMITS = new WeakMap<CompiledTraffic, UpstreamLimits | null>();

/**
 * The connection settings a policy sets (its connection pool's, and timeouts.idle for TCP connections), or
 * undefined when it sets none (the proxy's defaults apply); once per compiled policy.
 */
export function upstreamLimits(t: CompiledTraffic | undefined): UpstreamLimits | undefined {
  if (!t) return undefined;
  let l = LIMITS.get(t);
  if (l === undefined) LIMITS.set(t, (l = limitsOf(t.connectionPool ?? {}, t.timeouts?.idleMs)));
  return l ?? undefined;
}

function limitsOf(p: CompiledConnectionPool, streamIdleMs: number | undefined): UpstreamLimits | null {
  if (p.connectTimeoutMs === undefined && !p.maxRequestsPerConnection && p.idleTimeoutMs === undefined && !streamIdleMs) return null;
  return Object.freeze({
    ...(p.connectTimeoutMs !== undefined ? { connectTimeoutMs: p.connectTimeoutMs } : {}),
    ...(p.maxRequestsPerConnection ? { maxRequestsPerConnection: p.maxRequestsPerConnection } : {}),
    ...(p.idleTimeoutMs !== undefined ? { idleTimeoutMs: p.idleTimeoutMs } : {}),
    ...(streamIdleMs ? { streamIdleMs } : {}),
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
    if (this.kind !== 'tcp' && b.pending.length > 0) drain(b);
  }
}

/** Takes a slot for a request or connection: the counters the limits are checked against. */
function take(b: BackendState, e: EndpointState, kind: SlotKind, retry: boolean, now: number, upstream: UpstreamLimits | undefined): Slot {
  if (kind === 'tcp') b.activeConnections++;
  else b.activeRequests++;
  if (retry) b.activeRetries++;
  e.outstanding++;
  e.requests++;
  e.lastUsedMs = now;
  return new Held(b, e, kind, retry, upstream);
}

class Queued implements PendingSlot, Waiter {
  readonly wait: Promise<Slot | undefined>;
  private resolve!: (s: Slot | undefined) => void;

  constructor(
    private readonly b: BackendState,
    private readonly e: EndpointState,
    readonly retry: boolean,
    private readonly since: number,
  ) {
    this.wait = new Promise((r) => (this.resolve = r));
  }

  grant(): void {
    // The slot is taken here, synchronously inside the release that freed it, under the limits in force now.
    this.resolve(take(this.b, this.e, 'http1', this.retry, this.since, this.b.upstream));
  }

  cancel(): void {
    if (this.b.pending.remove(this)) this.resolve(undefined);
  }
}

/**
 * Hands free slots to the waiting requests, oldest first, under the limits of the config version in force
 * (b.pool: a new version may have raised or removed them). The head keeps its place while any limit holds it.
 */
function drain(b: BackendState): void {
  for (let w = b.pending.peek(); w && !overflow(b.pool, b, 'http1', w.retry); w = b.pending.peek()) {
    b.pending.shift();
    w.grant();
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

/**
 * A slot for one request/connection to endpoint `e`; a place in the pending queue for an HTTP/1.1 request
 * that found maxConnections reached when the policy sets http1MaxPendingRequests and the queue has room; or
 * undefined when over a limit (counted). The endpoint stays the one picked (Envoy: a pending request waits
 * in its host's pool).
 */
export function acquire(
  p: CompiledConnectionPool | undefined,
  b: BackendState,
  e: EndpointState,
  kind: SlotKind,
  retry: boolean,
  now: number,
  /** the connection settings the slot carries to the adapter (upstreamLimits of the policy) */
  upstream?: UpstreamLimits,
): Slot | PendingSlot | undefined {
  b.pool = p;
  b.upstream = upstream;
  if (kind !== 'http1') {
    if (!overflow(p, b, kind, retry)) return take(b, e, kind, retry, now, upstream);
  } else {
    // Requests already waiting go first (a new version may have raised the limit: hand out what is free now).
    if (b.pending.length > 0) drain(b);
    const why = overflow(p, b, kind, retry) ?? (b.pending.length > 0 ? 'max_connections' : undefined);
    if (!why) return take(b, e, kind, retry, now, upstream);
    if (why === 'max_connections' && p?.http1MaxPendingRequests !== undefined && p.maxConnections !== undefined && b.pending.length < p.http1MaxPendingRequests) {
      const q = new Queued(b, e, retry, now);
      b.pending.push(q);
      return q;
    }
  }
  b.overloaded++;
  e.overloaded++;
  return undefined;
}

/** Whether any limit is reached now (the "circuit open" the admin page shows). */
export function circuitOpen(p: CompiledConnectionPool | undefined, b: BackendState): boolean {
  if (!p) return false;
  return (p.maxConnections !== undefined && Math.max(b.activeConnections, b.activeRequests) >= p.maxConnections) || (p.http2MaxRequests !== undefined && b.activeRequests >= p.http2MaxRequests);
}
