// Routing metrics, apart from istio_requests_total (which still counts one request per client request,
// with the backend that answered): retries made and by which policy, retries the budget refused, route
// timeouts, mirrored requests, requests no rule matched. Children cached per label set (one Map lookup per
// increment, no prom-client label hashing on the hot path).
import { Counter, type Registry } from 'prom-client';

type Child = { inc(): void };

class CachedCounter<L extends string> {
  private readonly children = new Map<string, Child>();
  constructor(private readonly c: Counter<L>) {}
  inc(...values: string[]): void {
    const k = values.join('\0');
    let ch = this.children.get(k);
    if (!ch) this.children.set(k, (ch = this.c.labels(...values)));
    ch.inc();
  }
}

export class RoutingMetrics {
  private readonly retriesC: CachedCounter<'destination_service' | 'policy'>;
  private readonly budgetC: CachedCounter<'destination_service'>;
  private readonly timeoutsC: CachedCounter<'destination_service' | 'route'>;
  private readonly mirrorsC: CachedCounter<'destination_service' | 'mirror' | 'result'>;
  private readonly unmatchedC: CachedCounter<'destination_service'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.retriesC = new CachedCounter(new Counter({ name: 'weft_retries_total', help: 'Retries made (tries after the first), by called Service and the policy that asked for them (route, traffic-policy, default)', labelNames: ['destination_service', 'policy'], registers }));
    this.budgetC = new CachedCounter(new Counter({ name: 'weft_retry_budget_exhausted_total', help: 'Retries not made because the Service retry budget was spent; the failure was returned as it came', labelNames: ['destination_service'], registers }));
    this.timeoutsC = new CachedCounter(new Counter({ name: 'weft_request_timeouts_total', help: 'Requests answered 504 because a route or TrafficPolicy timeout expired, by called Service and route rule', labelNames: ['destination_service', 'route'], registers }));
    this.mirrorsC = new CachedCounter(new Counter({ name: 'weft_mirrored_requests_total', help: 'Copies of requests sent by RequestMirror filters (responses ignored), by called Service, mirror Service and result (sent, failed, skipped)', labelNames: ['destination_service', 'mirror', 'result'], registers }));
    this.unmatchedC = new CachedCounter(new Counter({ name: 'weft_route_unmatched_total', help: 'Requests answered 404 because routes are attached to the Service and none matched', labelNames: ['destination_service'], registers }));
  }

  retry(service: string, policy: string): void {
    this.retriesC.inc(service, policy);
  }
  budgetExhausted(service: string): void {
    this.budgetC.inc(service);
  }
  timeout(service: string, route: string): void {
    this.timeoutsC.inc(service, route);
  }
  mirror(service: string, mirror: string, result: 'sent' | 'failed' | 'skipped'): void {
    this.mirrorsC.inc(service, mirror, result);
  }
  unmatched(service: string): void {
    this.unmatchedC.inc(service);
  }
}
