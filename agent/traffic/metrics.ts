// weft_traffic_* metrics, collected at scrape time from the runtime state (nothing is counted twice on the
// data path): ejections (and when they end), endpoint load and latency, circuit use against its limits and
// overflows, rate-limit rejections per caller and per endpoint, fallbacks. Label sets are bounded by the
// endpoints, policies and callers this node has seen. The controller's endpoint view (operator page) is
// built from these.
import { Counter, Gauge, type Registry } from 'prom-client';

import type { CircuitLimits, TrafficStatus } from './status.js';

/** The limits as resource names of weft_traffic_circuit_in_use. */
export function limitEntries(l: CircuitLimits): [string, number][] {
  const out: [string, number][] = [];
  if (l.maxConnections !== undefined) out.push(['connections', l.maxConnections]);
  if (l.http2MaxRequests !== undefined) out.push(['requests', l.http2MaxRequests]);
  if (l.http1MaxPendingRequests !== undefined) out.push(['pending', l.http1MaxPendingRequests]);
  if (l.maxRetries !== undefined) out.push(['retries', l.maxRetries]);
  return out;
}

export function registerTrafficMetrics(registry: Registry, status: () => TrafficStatus): void {
  const registers = [registry];
  let snap: TrafficStatus | undefined;
  // One status per scrape, however many metrics read it. prom-client collects the metrics of a registry in
  // registration order, so the first one (`fresh`) takes the snapshot and the rest of that scrape share it;
  // it is dropped on the next turn of the event loop, so a metric read on its own never sees an old one.
  const fresh = (): TrafficStatus => {
    snap = status();
    setImmediate(() => (snap = undefined));
    return snap;
  };
  const read = (): TrafficStatus => snap ?? fresh();
  new Gauge({
    name: 'weft_traffic_endpoint_ejected',
    help: 'Whether outlier detection has ejected the endpoint (1) or not (0), per backend (<ns>/<svc>:<port>) and endpoint (ip:port)',
    labelNames: ['backend', 'endpoint'],
    registers,
    collect() {
      this.reset();
      for (const b of fresh().backends) for (const e of b.endpoints) this.set({ backend: b.backend, endpoint: e.id }, e.ejected ? 1 : 0);
    },
  });
  new Counter({
    name: 'weft_traffic_ejections_total',
    help: 'Outlier ejections of the endpoint since the agent started',
    labelNames: ['backend', 'endpoint'],
    registers,
    collect() {
      this.reset();
      for (const b of read().backends) for (const e of b.endpoints) if (e.ejectionsTotal > 0) this.inc({ backend: b.backend, endpoint: e.id }, e.ejectionsTotal);
    },
  });
  new Gauge({
    name: 'weft_traffic_endpoint_ejection_end_timestamp_seconds',
    help: 'Unix time the ejection of an ejected endpoint ends (it returns at the next outlier sweep after it); only ejected endpoints',
    labelNames: ['backend', 'endpoint'],
    registers,
    collect() {
      this.reset();
      for (const b of read().backends) for (const e of b.endpoints) if (e.ejectedUntil) this.set({ backend: b.backend, endpoint: e.id }, Date.parse(e.ejectedUntil) / 1000);
    },
  });
  new Gauge({
    name: 'weft_traffic_circuit_in_use',
    help: 'Circuit-breaking resources in use from this node towards the backend: connections (TCP connections, or HTTP/1.1 requests each holding one), requests (any HTTP version), pending (HTTP/1.1 requests waiting for a connection), retries',
    labelNames: ['backend', 'resource'],
    registers,
    collect() {
      this.reset();
      for (const b of read().backends) {
        const c = b.circuit;
        if (!Object.keys(c.limits).length) continue;
        this.set({ backend: b.backend, resource: 'connections' }, Math.max(c.activeConnections, c.activeRequests));
        this.set({ backend: b.backend, resource: 'requests' }, c.activeRequests);
        this.set({ backend: b.backend, resource: 'pending' }, c.pending);
        this.set({ backend: b.backend, resource: 'retries' }, c.activeRetries);
      }
    },
  });
  new Gauge({
    name: 'weft_traffic_circuit_limit',
    help: 'The TrafficPolicy connectionPool limit of each resource of weft_traffic_circuit_in_use (only limits that are set)',
    labelNames: ['backend', 'resource'],
    registers,
    collect() {
      this.reset();
      for (const b of read().backends) for (const [resource, v] of limitEntries(b.circuit.limits)) this.set({ backend: b.backend, resource }, v);
    },
  });
  new Gauge({
    name: 'weft_traffic_endpoint_outstanding',
    help: 'Requests (or TCP connections) in flight from this node to the endpoint',
    labelNames: ['backend', 'endpoint'],
    registers,
    collect() {
      this.reset();
      for (const b of read().backends) for (const e of b.endpoints) this.set({ backend: b.backend, endpoint: e.id }, e.outstanding);
    },
  });
  new Gauge({
    name: 'weft_traffic_endpoint_latency_ewma_ms',
    help: 'Peak-EWMA latency estimate the balancer uses for the endpoint, in ms',
    labelNames: ['backend', 'endpoint'],
    registers,
    collect() {
      this.reset();
      for (const b of read().backends) for (const e of b.endpoints) this.set({ backend: b.backend, endpoint: e.id }, e.ewmaLatencyMs);
    },
  });
  new Counter({
    name: 'weft_traffic_overloaded_total',
    help: 'Requests and connections refused by a connectionPool limit (answered 503 x-weft-overloaded, TCP refused)',
    labelNames: ['backend'],
    registers,
    collect() {
      this.reset();
      for (const b of read().backends) if (b.circuit.overloaded > 0) this.inc({ backend: b.backend }, b.circuit.overloaded);
    },
  });
  new Counter({
    name: 'weft_traffic_rate_limited_total',
    help: 'Requests refused 429 by a local rate limit, per TrafficPolicy and caller principal',
    labelNames: ['policy', 'source_principal'],
    registers,
    collect() {
      this.reset();
      for (const r of read().rateLimits) for (const [principal, n] of Object.entries(r.rejected)) this.inc({ policy: r.policy, source_principal: principal }, n);
    },
  });
  new Counter({
    name: 'weft_traffic_endpoint_rate_limited_total',
    help: 'Requests refused 429 by a local rate limit at this destination endpoint (ip:port), all callers',
    labelNames: ['policy', 'endpoint'],
    registers,
    collect() {
      this.reset();
      for (const r of read().rateLimits) {
        let n = 0;
        for (const v of Object.values(r.rejected)) n += v;
        if (n > 0) this.inc({ policy: r.policy, endpoint: r.endpoint }, n);
      }
    },
  });
  new Counter({
    name: 'weft_traffic_fallbacks_total',
    help: 'Requests answered by a TrafficPolicy fallback, per backend and target (<ns>/<svc> or response)',
    labelNames: ['backend', 'target'],
    registers,
    collect() {
      this.reset();
      for (const b of read().backends) for (const [target, n] of Object.entries(b.fallbacks)) this.inc({ backend: b.backend, target }, n);
    },
  });
}
