// What operators see of the traffic features on this node (admin API GET /traffic, `weft` CLI, operator
// page, weft_traffic_* metrics): per backend the policy in force, circuit state and fallbacks; per endpoint
// whether it is ejected (and until when), outstanding requests, peak-EWMA latency, requests, failures,
// overloads; per token bucket the tokens left and the rejections per caller. Read from the runtime state
// at request time, never on the data path (an idle backend's due outlier sweeps run here).
import type { MeshConfig } from '../../common/mesh.js';
import type { CompiledConnectionPool } from '../../common/policy/traffic.js';
import type { TrafficEntry } from '../../common/policy.js';
import type { RuntimeState } from '../pipeline/runtime.js';
import type { BackendState } from './backend-state.js';
import { circuitOpen } from './circuit.js';
import { sweep } from './outlier.js';
import type { TokenBucket } from './rate-limit.js';
import { BACKEND_SPACE, BUCKET_SPACE } from './stages.js';
import { TrafficTable } from './table.js';

export interface EndpointStatus {
  id: string;
  ejected: boolean;
  /** ISO time the ejection ends (it returns at the next sweep after it); null when not ejected */
  ejectedUntil: string | null;
  /** ISO time of the current ejection; null when not ejected */
  ejectedSince: string | null;
  /** Envoy's ejection multiplier: the next ejection lasts base × (this + 1), at most max(300 s, base) */
  ejections: number;
  ejectionsTotal: number;
  outstanding: number;
  ewmaLatencyMs: number;
  requests: number;
  failures: number;
  overloaded: number;
}

/** The connectionPool limits in force (absent: unlimited) */
export interface CircuitLimits {
  maxConnections?: number;
  http2MaxRequests?: number;
  http1MaxPendingRequests?: number;
  maxRetries?: number;
}

export interface CircuitStatus {
  open: boolean;
  activeRequests: number;
  activeConnections: number;
  activeRetries: number;
  /** HTTP/1.1 requests waiting for a connection now (http1MaxPendingRequests) */
  pending: number;
  /** requests that waited and got a slot, and that left the queue without one (client gone, timeout) */
  pendingGranted: number;
  pendingCancelled: number;
  overloaded: number;
  limits: CircuitLimits;
}

export interface BackendStatus {
  backend: string;
  policy: string | null;
  loadBalancer: string;
  circuit: CircuitStatus;
  fallbacks: Record<string, number>;
  problems: string[];
  endpoints: EndpointStatus[];
}

export interface BucketStatus {
  policy: string;
  pod: string;
  /** -1: the default bucket; otherwise the perPrincipal entry */
  entry: number;
  /** the destination endpoint ("ip:port") it guards */
  endpoint: string;
  tokens: number;
  allowed: number;
  /** rejections by caller principal */
  rejected: Record<string, number>;
}

export interface TrafficStatus {
  backends: BackendStatus[];
  rateLimits: BucketStatus[];
}

function circuitStatus(p: CompiledConnectionPool | undefined, b: BackendState): CircuitStatus {
  const limits: CircuitLimits = {};
  if (p?.maxConnections !== undefined) limits.maxConnections = p.maxConnections;
  if (p?.http2MaxRequests !== undefined) limits.http2MaxRequests = p.http2MaxRequests;
  if (p?.http1MaxPendingRequests !== undefined) limits.http1MaxPendingRequests = p.http1MaxPendingRequests;
  if (p?.maxRetries !== undefined) limits.maxRetries = p.maxRetries;
  return {
    open: circuitOpen(p, b),
    activeRequests: b.activeRequests,
    activeConnections: b.activeConnections,
    activeRetries: b.activeRetries,
    pending: b.pending.length,
    pendingGranted: b.pending.granted,
    pendingCancelled: b.pending.cancelled,
    overloaded: b.overloaded,
    limits,
  };
}

function keysOf(runtime: RuntimeState, space: string): string[] {
  const keys: string[] = [];
  runtime.retain(space, (k) => {
    keys.push(k);
    return true;
  });
  return keys.sort();
}

export function trafficStatus(runtime: RuntimeState, config: MeshConfig, perfNow = performance.now(), wallNow = Date.now()): TrafficStatus {
  const table = new TrafficTable(config.policies.filter((p): p is TrafficEntry => p.kind === 'TrafficPolicy'), config.services);
  const backends: BackendStatus[] = [];
  for (const key of keysOf(runtime, BACKEND_SPACE)) {
    const b = runtime.peek<BackendState>(BACKEND_SPACE, key)!;
    const p = table.forBackend(key);
    // Sweeps run when the backend is used; an idle backend is swept here, so what operators see is current.
    const od = p?.traffic.outlierDetection;
    if (od) sweep(od, b, perfNow);
    backends.push({
      backend: key,
      policy: p?.name ?? null,
      loadBalancer: p?.traffic.loadBalancer.kind ?? 'LEAST_REQUEST',
      circuit: circuitStatus(p?.traffic.connectionPool, b),
      fallbacks: Object.fromEntries(b.fallbacks),
      problems: p?.traffic.problems ?? [],
      endpoints: [...b.endpoints.values()].map((s) => ({
        id: s.id,
        ejected: s.ejected,
        ejectedUntil: s.ejected ? new Date(wallNow + (s.ejectedUntil - perfNow)).toISOString() : null,
        ejectedSince: s.ejected ? new Date(wallNow + (s.ejectedAt - perfNow)).toISOString() : null,
        ejections: s.ejections,
        ejectionsTotal: s.ejectionsTotal,
        outstanding: s.outstanding,
        ewmaLatencyMs: Math.round(s.ewmaMs * 100) / 100,
        requests: s.requests,
        failures: s.failures,
        overloaded: s.overloaded,
      })),
    });
  }
  const rateLimits: BucketStatus[] = [];
  for (const key of keysOf(runtime, BUCKET_SPACE)) {
    const tb = runtime.peek<TokenBucket>(BUCKET_SPACE, key)!;
    const [policy, pod, entry] = key.split('|');
    rateLimits.push({ policy: policy!, pod: pod!, entry: Number(entry), endpoint: tb.endpoint, tokens: Math.floor(tb.available * 100) / 100, allowed: tb.allowed, rejected: Object.fromEntries(tb.rejected) });
  }
  return { backends, rateLimits };
}
