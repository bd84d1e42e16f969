// Outlier detection, Envoy's consecutive-error detectors as Istio configures them: an endpoint answering
// `consecutive5xxErrors` 5xx in a row (connect failures, resets and timeouts count as 5xx, Envoy's default
// when local-origin errors are not split), or `consecutiveGatewayErrors` 502/503/504/connect failures in a
// row, is ejected at once — unless that would take more than maxEjectionPercent of the endpoints out (at
// least one can always be ejected). It stays out for baseEjectionTime × its ejection multiplier, capped at
// max(base, 300 s); it returns at the first interval sweep after that. The multiplier grows by one per
// ejection and shrinks by one per sweep the endpoint spends in service (Envoy ≥ 1.19), so an endpoint that
// keeps failing is ejected for longer each time. Sweeps run lazily when the backend is used (no timers), at
// the same instants an interval timer would have fired.
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

export function ejectionTimeMs(p: CompiledOutlierDetection, ejections: number): number {
  return Math.min(p.baseEjectionTimeMs * ejections, Math.max(p.baseEjectionTimeMs, p.maxEjectionTimeMs));
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
  s.ejections++;
  s.ejectionsTotal++;
  s.ejectedUntil = now + ejectionTimeMs(p, s.ejections);
  b.epoch++;
  return true;
}

/** Runs the interval sweeps due by `now`: returns endpoints whose time is up, decays multipliers. */
export function sweep(p: CompiledOutlierDetection, b: BackendState, now: number): void {
  if (b.nextSweep === 0) {
    b.nextSweep = now + p.intervalMs;
    return;
  }
  while (now >= b.nextSweep) {
    const at = b.nextSweep;
    for (const s of b.endpoints.values()) {
      if (s.ejected) {
        if (at >= s.ejectedUntil) {
          s.ejected = false;
          s.ejectedUntil = 0;
          s.consecutive5xx = 0;
          s.consecutiveGateway = 0;
          b.epoch++;
        }
      } else if (s.ejections > 0) {
        s.ejections--;
      }
    }
    // A backend idle for a long time catches up without looping per missed interval.
    const missed = Math.floor((now - at) / p.intervalMs);
    b.nextSweep = at + Math.max(1, missed > 1000 ? missed : 1) * p.intervalMs;
  }
}
