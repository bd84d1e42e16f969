// Outlier detection, Envoy's consecutive-error detectors as Istio configures them: an endpoint answering
// `consecutive5xxErrors` 5xx in a row (connect failures, resets and timeouts count as 5xx, Envoy's default
// when local-origin errors are not split), or `consecutiveGatewayErrors` 502/503/504/connect failures in a
// row, is ejected at once — unless that would take more than maxEjectionPercent of the endpoints out (at
// least one can always be ejected). Envoy's ejection time rule, exactly (outlier_detection_impl.cc):
//   - on ejection the multiplier grows by one, but only while multiplier × base < max + base, so it stops
//     one step past the cap (base 30 s, max 300 s: at 11) and an endpoint that failed for hours is not
//     punished for hours more once it recovers;
//   - at each interval sweep an endpoint that is ejected returns when now − ejectedAt ≥
//     min(base × multiplier, max), with the policy in force at that sweep; every endpoint not ejected at
//     the sweep (not the one returning at it) has its multiplier lowered by one, down to 0;
//   - max is Envoy's max_ejection_time, which Istio leaves at its default: max(300 s, base).
// So an endpoint that fails again right after returning (before the next sweep) is ejected for 2 × base,
// one that stayed healthy for k sweeps for (multiplier − k + 1) × base. Sweeps run lazily when the
// backend is used (no timers), computed in closed form for every sweep instant a timer would have fired.
import type { CompiledOutlierDetection } from '../../common/policy/traffic.js';
import type { BackendState } from './backend-state.js';
import type { EndpointState } from './endpoint-state.js';

/** What one attempt at an endpoint came to, as outlier detection counts it. */
export type EndpointOutcome =
  /** an HTTP status (any: 2xx–4xx reset the counters), or 0 with a local-origin error */
  { status: number; error?: string };

/** Local-origin failures and the status Envoy maps them to when errors are not split. */
const LOCAL_ORIGIN: Readonly<Record<string, number>> = {
  connect_failed: 503,
  connect_timeout: 503,
  reset: 503,
  timeout: 504,
  tunnel_failed: 503,
};

/** The status an outcome counts as; undefined when it says nothing about the endpoint (e.g. denied by policy, cancelled by the client). */
export function outcomeStatus(o: EndpointOutcome): number | undefined {
  if (o.status > 0) return o.status;
  return o.error === undefined ? undefined : LOCAL_ORIGIN[o.error];
}

/** Envoy's max_ejection_time as Istio leaves it: 300 s, or the base when that is longer. */
function maxEjectionMs(p: CompiledOutlierDetection): number {
  return Math.max(p.baseEjectionTimeMs, p.maxEjectionTimeMs);
}

export function ejectionTimeMs(p: CompiledOutlierDetection, ejections: number): number {
  return Math.min(p.baseEjectionTimeMs * ejections, maxEjectionMs(p));
}

/**
 * Records one outcome; ejects the endpoint when a detector trips and the percentage allows.
 * `total` is the number of endpoints in the backend now. Returns true when it ejected.
 */
export function recordOutcome(p: CompiledOutlierDetection, b: BackendState, s: EndpointState, o: EndpointOutcome, total: number, now: number): boolean {
  const status = outcomeStatus(o);
  if (status === undefined) return false;
  if (status < 500) {
    s.consecutive5xx = 0;
    s.consecutiveGateway = 0;
    return false;
  }
  s.consecutive5xx++;
  if (status === 502 || status === 503 || status === 504) s.consecutiveGateway++;
  else s.consecutiveGateway = 0;
  if (s.ejected) return false;
  const trip5xx = p.consecutive5xxErrors > 0 && s.consecutive5xx >= p.consecutive5xxErrors;
  const tripGw = p.consecutiveGatewayErrors > 0 && s.consecutiveGateway >= p.consecutiveGatewayErrors;
  if (!trip5xx && !tripGw) return false;
  // The detector tripped: its counters start again whether or not the ejection is allowed (Envoy).
  s.consecutive5xx = 0;
  s.consecutiveGateway = 0;
  const ejectedNow = b.ejectedCount();
  if (ejectedNow > 0 && (100 * (ejectedNow + 1)) / Math.max(total, 1) > p.maxEjectionPercent) return false;
  s.ejected = true;
  if (s.ejections * p.baseEjectionTimeMs < maxEjectionMs(p) + p.baseEjectionTimeMs) s.ejections++;
  s.ejectionsTotal++;
  s.ejectedAt = now;
  s.ejectedUntil = now + ejectionTimeMs(p, s.ejections);
  b.epoch++;
  return true;
}

/**
 * Runs the interval sweeps due by `now` (at b.nextSweep, + interval, ...): returns endpoints whose time is
 * up, lowers multipliers. The result is the same as running each sweep in turn, computed per endpoint at
 * once, so a backend idle for hours catches up in one pass.
 */
export function sweep(p: CompiledOutlierDetection, b: BackendState, now: number): void {
  if (b.nextSweep === 0) {
    b.nextSweep = now + p.intervalMs;
    return;
  }
  if (now < b.nextSweep) return;
  const first = b.nextSweep;
  const n = Math.floor((now - first) / p.intervalMs) + 1;
  const last = first + (n - 1) * p.intervalMs;
  for (const s of b.endpoints.values()) {
    if (!s.ejected) {
      s.ejections = Math.max(0, s.ejections - n);
      continue;
    }
    const until = s.ejectedAt + ejectionTimeMs(p, s.ejections);
    s.ejectedUntil = until;
    if (until > last) continue;
    // It returns at the first of these sweeps at or after `until`; every later one lowers its multiplier.
    const k = until <= first ? 0 : Math.ceil((until - first) / p.intervalMs);
    s.ejected = false;
    s.ejectedUntil = 0;
    s.consecutive5xx = 0;
    s.consecutiveGateway = 0;
    s.ejections = Math.max(0, s.ejections - (n - 1 - k));
    b.epoch++;
  }
  b.nextSweep = last + p.intervalMs;
}
