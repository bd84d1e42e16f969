// Retry decisions, owned by the router as Envoy's router filter owns them. Three sources, the first that
// applies wins: the matched route rule's `retry` (GEP-1731), the called Service's TrafficPolicy `retries`
// (Istio retryOn conditions; also gRPC codes), and the default every request gets: one retry, at once, on
// another endpoint, when the connection failed before a byte was sent. Every retry is paid from the
// Service's retry budget (budget.ts); attempts count retries after the first try; the wait before retry n
// is the backoff minimum plus exponential jitter above it (Envoy's: random in [0, base * 2^n), capped at
// 10 x base). When retries run out (or the budget says no), the last failure is returned as it came.
import type { RouteRetry } from '../../common/policy/route.js';
import type { CompiledTrafficRetries } from '../../common/policy/traffic.js';
import type { RetryBudget } from './budget.js';

/** What one try came to, as the pipeline reports it (agent/pipeline/stages.ts AttemptResult). */
export interface TryResult {
  status: number;
  grpcStatus?: number;
  error?: string;
  sent: boolean;
}

/** Failures before any response that a retry stanza retries (connection failures, resets, per-try timeouts). */
const CONNECTION_FAILURES = new Set(['connect_failed', 'connect_timeout', 'refused', 'reset', 'tunnel_stream', 'tunnel_timeout', 'misdirected', 'timeout']);
/** Failures where the connection never carried a byte of the request: safe to retry with no config at all. */
const NOT_SENT = new Set(['connect_failed', 'connect_timeout', 'refused', 'tunnel_stream', 'tunnel_timeout']);

/** gRPC status codes by Istio retryOn name. */
export const GRPC_RETRY_ON: Readonly<Record<string, number>> = { cancelled: 1, 'deadline-exceeded': 4, 'resource-exhausted': 8, internal: 13, unavailable: 14 };

/** A compiled retry policy: the conditions and limits, independent of where they came from. */
export interface RetryRule {
  /** where it came from, for logs and metrics: "route", "traffic-policy" or "default" */
  source: 'route' | 'traffic-policy' | 'default';
  attempts: number;
  backoffMs: number;
  /** HTTP statuses retried */
  codes: ReadonlySet<number>;
  /** any 5xx (Envoy "5xx") */
  any5xx: boolean;
  /** gRPC statuses retried (trailers-only responses) */
  grpcCodes: ReadonlySet<number>;
  /** connection failures, resets and per-try timeouts before a response */
  connectionFailures: boolean;
  /** only failures where nothing was sent (the default policy) */
  onlyUnsent: boolean;
}

export function routeRetryRule(r: RouteRetry): RetryRule {
  return { source: 'route', attempts: r.attempts, backoffMs: r.backoffMs, codes: new Set(r.codes), any5xx: false, grpcCodes: new Set(), connectionFailures: true, onlyUnsent: false };
}

/** Istio retryOn conditions (TrafficPolicy.retries) to a rule. Envoy's default backoff base is 25 ms. */
export function trafficRetryRule(r: CompiledTrafficRetries): RetryRule {
  const codes = new Set<number>();
  const grpcCodes = new Set<number>();
  let any5xx = false;
  let connectionFailures = false;
  for (const c of r.retryOn) {
    const cond = c.trim();
    if (/^[0-9]{3}$/.test(cond)) codes.add(Number(cond));
    else if (cond === '5xx') {
      any5xx = true;
      connectionFailures = true;
    } else if (cond === 'gateway-error') [502, 503, 504].forEach((n) => codes.add(n));
    else if (cond === 'retriable-4xx') codes.add(409);
    else if (cond === 'reset' || cond === 'connect-failure' || cond === 'refused-stream') connectionFailures = true;
    else if (GRPC_RETRY_ON[cond] !== undefined) grpcCodes.add(GRPC_RETRY_ON[cond]!);
  }
  return { source: 'traffic-policy', attempts: r.attempts, backoffMs: 25, codes, any5xx, grpcCodes, connectionFailures, onlyUnsent: false };
}

export const DEFAULT_RETRY_RULE: RetryRule = Object.freeze({ source: 'default', attempts: 1, backoffMs: 0, codes: new Set<number>(), any5xx: false, grpcCodes: new Set<number>(), connectionFailures: true, onlyUnsent: true });

/** Whether the rule retries this result (attempt limits and budget aside). */
export function retriable(rule: RetryRule, r: TryResult): boolean {
  if (r.status > 0) {
    if (r.grpcStatus !== undefined && r.grpcStatus !== 0 && rule.grpcCodes.has(r.grpcStatus)) return true;
    return rule.codes.has(r.status) || (rule.any5xx && r.status >= 500 && r.status <= 599);
  }
  if (!r.error || !rule.connectionFailures) return false;
  if (rule.onlyUnsent) return !r.sent && NOT_SENT.has(r.error);
  return CONNECTION_FAILURES.has(r.error);
}

/** Wait before retry number `retry` (1 = the first retry): the minimum, plus jitter growing exponentially. */
export function backoffMs(baseMs: number, retry: number, random: () => number = Math.random): number {
  if (baseMs <= 0) return 0;
  const cap = 10 * baseMs;
  const span = Math.min(cap, baseMs * 2 ** (retry - 1)) - baseMs;
  return Math.round(baseMs + (span > 0 ? random() * span : 0));
}

export type RetryVerdict = { retry: true; delayMs: number } | { retry: false; reason: 'not_retriable' | 'attempts_exhausted' | 'budget_exhausted' };

/** After try number `attempt` (1 = first) gave `r`: retry (after how long) or not, and why not. */
export function decideRetry(rule: RetryRule, attempt: number, r: TryResult, budget: RetryBudget, random?: () => number): RetryVerdict {
  if (!retriable(rule, r)) return { retry: false, reason: 'not_retriable' };
  if (attempt > rule.attempts) return { retry: false, reason: 'attempts_exhausted' };
  if (!budget.withdraw()) return { retry: false, reason: 'budget_exhausted' };
  return { retry: true, delayMs: backoffMs(rule.backoffMs, attempt, random) };
}
