// Compiled TrafficPolicy (issue 13): what an agent needs to apply one policy, with the target Service
// resolved to "<ns>/<name>", durations in milliseconds and every default filled in (Istio's and Envoy's
// defaults; docs/traffic.md lists them), so the data path never interprets the raw spec. Plain JSON data.

/** How an endpoint is picked; per request for HTTP and gRPC, per connection for TCP. */
export type CompiledLoadBalancer =
  | { kind: 'LEAST_REQUEST' }
  | { kind: 'ROUND_ROBIN' }
  | { kind: 'RANDOM' }
  /** consistent hash on a request header (lower-case name) */
  | { kind: 'HASH_HEADER'; header: string }
  /** consistent hash on a cookie; set on the response when the request has none */
  | { kind: 'HASH_COOKIE'; cookie: string; path?: string; ttlMs: number }
  | { kind: 'HASH_SOURCE_IP' };

/** Limits of one node proxy towards the Service; an absent limit is unlimited (Istio's default). */
export interface CompiledConnectionPool {
  maxConnections?: number;
  /** tcp.connectTimeout; absent: the proxy's own (10 s, Istio's default) */
  connectTimeoutMs?: number;
  http1MaxPendingRequests?: number;
  http2MaxRequests?: number;
  /** requests (HTTP/1.1) or streams (HTTP/2) on one upstream connection, then a new one; absent or 0: no limit */
  maxRequestsPerConnection?: number;
  maxRetries?: number;
  /** http.idleTimeout: an upstream connection with no request for this long is closed; absent: the proxy's own */
  idleTimeoutMs?: number;
}

/** Envoy's consecutive-error outlier detection, as Istio configures it. */
export interface CompiledOutlierDetection {
  /** 0: off */
  consecutive5xxErrors: number;
  /** 0: off */
  consecutiveGatewayErrors: number;
  intervalMs: number;
  baseEjectionTimeMs: number;
  maxEjectionPercent: number;
  /** Envoy's max_ejection_time, which Istio leaves at its default */
  maxEjectionTimeMs: number;
}

export interface CompiledRateLimitBucket {
  requestsPerSecond: number;
  burst: number;
}

export interface CompiledRateLimit extends CompiledRateLimitBucket {
  /** callers with a bucket of their own; principals normalised to spiffe:// IDs */
  perPrincipal: (CompiledRateLimitBucket & { principals: string[] })[];
}

export interface CompiledFault {
  /** percent 0 (no percentage given) means never, as in Istio */
  delay?: { delayMs: number; percent: number };
  abort?: { httpStatus?: number; grpcStatus?: number; percent: number };
}

export const FALLBACK_CONDITIONS = ['5xx', 'gateway-error', 'connect-failure', 'timeout', 'overloaded', 'no-healthy-endpoint'] as const;
export type FallbackCondition = (typeof FALLBACK_CONDITIONS)[number];

export type CompiledFallbackTarget =
  /** `resolved` false: no such Service (reported in `problems`); the primary's failure is then returned */
  | { kind: 'service'; service: string; port: number; resolved: boolean }
  | { kind: 'response'; status: number; headers: [string, string][]; body: string };

export interface CompiledFallback {
  target: CompiledFallbackTarget;
  on: FallbackCondition[];
}

/** Linkerd's retry budget: retries may add `percent` of the requests of the last interval, plus a floor. */
export interface CompiledRetryBudget {
  percent: number;
  minRetriesPerSecond: number;
  intervalMs: number;
}

export interface CompiledTrafficRetries {
  attempts: number;
  perTryTimeoutMs?: number;
  retryOn: string[];
}

export interface CompiledTrafficTimeouts {
  /** 0: none */
  requestMs?: number;
  idleMs?: number;
}

export interface CompiledTraffic {
  /** "<namespace>/<name>" of the Service */
  service: string;
  /** only this service port; all ports when undefined (a port-specific policy wins over an all-ports one) */
  port?: number;
  /** creation time of the object: among policies for the same target the oldest wins (Gateway API) */
  createdMs: number;
  loadBalancer: CompiledLoadBalancer;
  connectionPool?: CompiledConnectionPool;
  outlierDetection?: CompiledOutlierDetection;
  rateLimit?: CompiledRateLimit;
  fault?: CompiledFault;
  fallback?: CompiledFallback;
  retryBudget?: CompiledRetryBudget;
  retries?: CompiledTrafficRetries;
  timeouts?: CompiledTrafficTimeouts;
  /** what the controller could not resolve (e.g. a fallback Service that does not exist), for operators */
  problems: string[];
}

/** Defaults, Istio's (DestinationRule) and Envoy's where Istio leaves them. */
export const TRAFFIC_DEFAULTS = {
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 3_600_000,
  consecutive5xxErrors: 5,
  consecutiveGatewayErrors: 0,
  intervalMs: 10_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionPercent: 10,
  maxEjectionTimeMs: 300_000,
  retryBudgetPercent: 20,
  retryBudgetMinPerSecond: 10,
  retryBudgetIntervalMs: 10_000,
} as const;

/** Gateway API / Go-style duration ("1h30m", "250ms", "0s") in milliseconds; NaN when malformed. */
export function durationMs(s: string): number {
  if (!/^([0-9]+(\.[0-9]+)?(h|m|s|ms))+$/.test(s)) return NaN;
  let ms = 0;
  for (const [, n, u] of s.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)/g)) ms += Number(n) * (u === 'h' ? 3_600_000 : u === 'm' ? 60_000 : u === 's' ? 1000 : 1);
  return Math.round(ms);
}

/** "<ns>/<svc>" + optional port: the key the agent's traffic table uses. */
export function trafficTargetKey(service: string, port?: number): string {
  return port === undefined ? service : `${service}:${port}`;
}
