// What the traffic features remember about one endpoint ("ip:port") of one backend ("<ns>/<svc>:<port>"),
// across config versions: load for the balancer (outstanding requests, peak-EWMA latency), outlier
// detection's counters and ejection, and what operators want to see. Mutable, one object per endpoint, no
// allocation per request.

/** Linkerd's peak-EWMA decay and the latency assumed for an endpoint never measured. */
export const EWMA_DECAY_MS = 10_000;
export const DEFAULT_RTT_MS = 30;

export class EndpointState {
  /** requests (or TCP connections) in flight to it from this node */
  outstanding = 0;
  /** peak-EWMA latency estimate in ms (a new peak is taken at once, then decays towards newer samples) */
  ewmaMs = DEFAULT_RTT_MS;
  /** when the estimate was last set: a new endpoint starts at DEFAULT_RTT_MS, decaying from its creation (Linkerd) */
  private ewmaAt = performance.now();

  // outlier detection (Envoy's consecutive errors)
  consecutive5xx = 0;
  consecutiveGateway = 0;
  /** performance.now() of its last ejection */
  ejectedAt = 0;
  /** performance.now() its ejection time is up (it returns at the next sweep); 0 when not ejected */
  ejectedUntil = 0;
  /** Envoy's ejection multiplier: base ejection time × this, decremented per healthy interval */
  ejections = 0;
  /** total ejections ever, for operators */
  ejectionsTotal = 0;
  ejected = false;

  // counters for operators
  requests = 0;
  failures = 0;
  overloaded = 0;
  lastUsedMs = 0;

  constructor(readonly id: string) {}

  /**
   * The balancer's cost: latency estimate × (outstanding + 1), as Linkerd's peak-EWMA P2C balancer. The
   * estimate decays towards 0 while no answer updates it (tower's PeakEwma), so an endpoint that was slow
   * once, or was never tried, is probed again instead of being starved for ever.
   */
  cost(now: number): number {
    return this.estimate(now) * (this.outstanding + 1);
  }

  estimate(now: number): number {
    const elapsed = now - this.ewmaAt;
    return elapsed > 0 ? this.ewmaMs * Math.exp(-elapsed / EWMA_DECAY_MS) : this.ewmaMs;
  }

  /** Records one response latency. */
  observe(latencyMs: number, now: number): void {
    // a peak is believed at once (a degrading endpoint loses traffic fast); lower samples decay in by time
    const cur = this.estimate(now);
    if (latencyMs > cur) {
      this.ewmaMs = latencyMs;
    } else {
      const w = Math.exp(-Math.max(0, now - this.ewmaAt) / EWMA_DECAY_MS);
      this.ewmaMs = cur * w + latencyMs * (1 - w);
    }
    if (now > this.ewmaAt) this.ewmaAt = now;
  }
}
