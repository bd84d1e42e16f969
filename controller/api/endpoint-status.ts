// Per endpoint, what each node's TrafficPolicy runtime holds (GET /api/v1/endpoints, the operator page's
// Endpoints view): ejected or not and until when, outstanding requests, peak-EWMA latency, the backend's
// circuit (connections/pending/requests/retries in use against their limits), and the 429s the endpoint's
// rate limit answered. Built from the agents' weft_traffic_* metrics (agent/traffic/metrics.ts), which the
// controller scrapes itself or reads from Prometheus: the agents' admin API is loopback only on each node.
import type { Sample } from '../telemetry/exposition.js';

export const EJECTED = 'weft_traffic_endpoint_ejected';
export const EJECTION_END = 'weft_traffic_endpoint_ejection_end_timestamp_seconds';
export const EJECTIONS = 'weft_traffic_ejections_total';
export const OUTSTANDING = 'weft_traffic_endpoint_outstanding';
export const LATENCY = 'weft_traffic_endpoint_latency_ewma_ms';
export const CIRCUIT_IN_USE = 'weft_traffic_circuit_in_use';
export const CIRCUIT_LIMIT = 'weft_traffic_circuit_limit';
export const OVERLOADED = 'weft_traffic_overloaded_total';
export const ENDPOINT_RATE_LIMITED = 'weft_traffic_endpoint_rate_limited_total';

/** Every metric the view reads, for the scraper to keep. */
export const ENDPOINT_METRICS = [EJECTED, EJECTION_END, EJECTIONS, OUTSTANDING, LATENCY, CIRCUIT_IN_USE, CIRCUIT_LIMIT, OVERLOADED, ENDPOINT_RATE_LIMITED] as const;

export interface CircuitUse {
  inUse: number;
  /** null: no limit set */
  limit: number | null;
}

export interface EndpointRow {
  /** the caller's node whose view this is */
  node: string;
  backend: string;
  endpoint: string;
  ejected: boolean;
  ejectedUntil: string | null;
  ejectionsTotal: number;
  outstanding: number;
  ewmaLatencyMs: number | null;
  /** the backend's circuit on that node: only resources with a limit */
  circuit: Record<string, CircuitUse>;
  overloaded: number;
  /** 429s the endpoint's local rate limit answered, all callers (counted on the endpoint's own node) */
  rateLimited: number;
}

/** The node a sample came from: the scraper's `node` label, else the Prometheus target's. */
function nodeOf(s: Sample): string {
  return s.labels.node ?? s.labels.instance ?? '?';
}

export function endpointRows(samples: Readonly<Record<string, readonly Sample[]>>): EndpointRow[] {
  const rows = new Map<string, EndpointRow>();
  const at = (s: Sample): EndpointRow | undefined => {
    const backend = s.labels.backend;
    const endpoint = s.labels.endpoint;
    if (!backend || !endpoint) return undefined;
    const key = `${nodeOf(s)}|${backend}|${endpoint}`;
    let r = rows.get(key);
    if (!r) rows.set(key, (r = { node: nodeOf(s), backend, endpoint, ejected: false, ejectedUntil: null, ejectionsTotal: 0, outstanding: 0, ewmaLatencyMs: null, circuit: {}, overloaded: 0, rateLimited: 0 }));
    return r;
  };
  for (const s of samples[EJECTED] ?? []) {
    const r = at(s);
    if (r) r.ejected = s.value >= 1;
  }
  for (const s of samples[OUTSTANDING] ?? []) {
    const r = at(s);
    if (r) r.outstanding = s.value;
  }
  for (const s of samples[LATENCY] ?? []) {
    const r = at(s);
    if (r) r.ewmaLatencyMs = s.value;
  }
  for (const s of samples[EJECTIONS] ?? []) {
    const r = at(s);
    if (r) r.ejectionsTotal = s.value;
  }
  for (const s of samples[EJECTION_END] ?? []) {
    const r = at(s);
    if (r && s.value > 0) r.ejectedUntil = new Date(s.value * 1000).toISOString();
  }
  // per node and backend
  const circuits = new Map<string, Record<string, CircuitUse>>();
  const circuit = (s: Sample) => {
    const k = `${nodeOf(s)}|${s.labels.backend}`;
    let c = circuits.get(k);
    if (!c) circuits.set(k, (c = {}));
    return (c[s.labels.resource ?? '?'] ??= { inUse: 0, limit: null });
  };
  for (const s of samples[CIRCUIT_LIMIT] ?? []) circuit(s).limit = s.value;
  for (const s of samples[CIRCUIT_IN_USE] ?? []) circuit(s).inUse = s.value;
  const overloaded = new Map<string, number>();
  for (const s of samples[OVERLOADED] ?? []) overloaded.set(`${nodeOf(s)}|${s.labels.backend}`, s.value);
  // per endpoint, wherever it was counted
  const limited = new Map<string, number>();
  for (const s of samples[ENDPOINT_RATE_LIMITED] ?? []) if (s.labels.endpoint) limited.set(s.labels.endpoint, (limited.get(s.labels.endpoint) ?? 0) + s.value);
  for (const r of rows.values()) {
    const k = `${r.node}|${r.backend}`;
    const c = circuits.get(k) ?? {};
    r.circuit = Object.fromEntries(Object.entries(c).filter(([, u]) => u.limit !== null));
    r.overloaded = overloaded.get(k) ?? 0;
    r.rateLimited = limited.get(r.endpoint) ?? 0;
  }
  return [...rows.values()].sort((a, b) => a.backend.localeCompare(b.backend) || a.endpoint.localeCompare(b.endpoint) || a.node.localeCompare(b.node));
}
