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
  private ewmaAt = 0;

  // outlier detection (Envoy's consecutive errors)
  consecutive5xx = 0;
  consecutiveGateway = 0;
  /** performance.now() until which it gets no traffic; 0 when not ejected */
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

  /** The balancer's cost: latency estimate × (outstanding + 1), as Linkerd's peak-EWMA P2C balancer. */
  cost(): number {
    return this.ewmaMs * (this.outstanding + 1);
  }

  /** Records one response latency. */
  observe(latencyMs: number, now: number): void {
    // a peak is believed at once (a degrading endpoint loses traffic fast); lower samples decay in by time
    if (latencyMs > this.ewmaMs || this.ewmaAt === 0) {
      this.ewmaMs = latencyMs;
    } else {
      const w = Math.exp(-(now - this.ewmaAt) / EWMA_DECAY_MS);
      this.ewmaMs = this.ewmaMs * w + latencyMs * (1 - w);
    }
    this.ewmaAt = now;
  }
}
