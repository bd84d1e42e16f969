// The golden metrics (linkerd viz stat's columns: SUCCESS, RPS, LATENCY_P50/P95/P99, TCP_CONN) computed from a
// window of Istio-named series. Pure: the controller's API, the CLI's tests and the page share it.
//
// Both proxies of a request may report it (reporter="source" on the caller's node, "destination" on the
// callee's). Counting both would double it, so each view picks one reporter per subject, as Kiali does: the
// inbound view of a workload uses its destination reports when it has any in the window, else its callers'
// source reports (a caller outside the mesh has no source report; a proxy that only reports at the source has
// no destination report); the outbound view does the mirror image.
import type { Sample } from './exposition.js';
import type { WindowData } from './window.js';

export interface Golden {
  requests: number;
  rps: number;
  /** share of responses that are not 5xx (and not 0: no response), null without requests */
  success: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface StatRow extends Golden {
  namespace: string;
  name: string;
  kind: 'workload' | 'service' | 'backend' | 'edge';
  /** meshed pods / pods, for workloads the controller knows */
  meshed: string | null;
  /** open TCP connections reported by the destination proxies (opened - closed) */
  tcpConn: number | null;
  /** share of requests over mutual TLS */
  mtls: number | null;
}

const UNKNOWN = 'unknown';

export function isSuccess(code: string | undefined): boolean {
  if (code === undefined || code === '' || code === '0') return false;
  return !code.startsWith('5');
}

/** Prometheus' histogram_quantile over cumulative bucket counts {le → count} (linear within a bucket). */
export function histogramQuantile(q: number, buckets: Map<number, number>): number | null {
  const les = [...buckets.keys()].sort((a, b) => a - b);
  if (!les.length || les[les.length - 1] !== Infinity) return null;
  const total = buckets.get(Infinity)!;
  if (!(total > 0)) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const le of les) {
    const count = buckets.get(le)!;
    if (count >= rank) {
      if (le === Infinity) return prevLe; // as Prometheus: the highest finite bound
      if (count === prevCount) return le;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / (count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

/** The Service name and namespace of a destination_service host (name.ns.svc.<domain>). */
export function serviceOf(s: Sample): { namespace: string; name: string } | undefined {
  const name = s.labels.destination_service_name;
  const ns = s.labels.destination_service_namespace;
  if (name && ns && name !== UNKNOWN) return { namespace: ns, name };
  const host = s.labels.destination_service;
  if (!host || host === UNKNOWN) return undefined;
  const parts = host.split('.');
  return parts.length >= 2 ? { name: parts[0]!, namespace: parts[1]! } : undefined;
}

type Side = 'source' | 'destination';
const subject = (s: Sample, side: Side) => ({
  namespace: s.labels[side === 'destination' ? 'destination_workload_namespace' : 'source_workload_namespace'] ?? UNKNOWN,
  name: s.labels[side === 'destination' ? 'destination_workload' : 'source_workload'] ?? UNKNOWN,
});

/** For each subject key, the reporter whose series to count (see the header). */
function reporterChoice(samples: Sample[], keyOf: (s: Sample) => string | undefined, preferred: Side): Map<string, Side> {
  const out = new Map<string, Side>();
  for (const s of samples) {
    const k = keyOf(s);
    if (k === undefined) continue;
    if (s.labels.reporter === preferred && s.value > 0) out.set(k, preferred);
    else if (!out.has(k)) out.set(k, preferred === 'destination' ? 'source' : 'destination');
  }
  return out;
}

interface Acc {
  requests: number;
  ok: number;
  mtls: number;
  buckets: Map<number, number>;
}

function finish(acc: Acc | undefined, seconds: number): Golden & { mtls: number | null } {
  const requests = acc?.requests ?? 0;
  return {
    requests: round(requests),
    rps: round(requests / seconds, 3),
    success: requests > 0 ? round(acc!.ok / requests, 4) : null,
    p50: acc ? roundQ(histogramQuantile(0.5, acc.buckets)) : null,
    p95: acc ? roundQ(histogramQuantile(0.95, acc.buckets)) : null,
    p99: acc ? roundQ(histogramQuantile(0.99, acc.buckets)) : null,
    mtls: requests > 0 ? round(acc!.mtls / requests, 4) : null,
  };
}

const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;
const roundQ = (v: number | null) => (v === null ? null : round(v, 2));

/**
 * Groups the window's request series by `keyOf` (undefined: skip), counting only the reporter chosen per
 * `subjectOf` key. Returns golden metrics per group key.
 */
export function groupGolden(w: WindowData, keyOf: (s: Sample) => string | undefined, subjectOf: (s: Sample) => string | undefined, preferred: Side): Map<string, Golden & { mtls: number | null }> {
  const choice = reporterChoice(w.requests, subjectOf, preferred);
  const counted = (s: Sample) => {
    const subj = subjectOf(s);
    return subj !== undefined && s.labels.reporter === choice.get(subj);
  };
  const accs = new Map<string, Acc>();
  const acc = (k: string) => {
    let a = accs.get(k);
    if (!a) accs.set(k, (a = { requests: 0, ok: 0, mtls: 0, buckets: new Map() }));
    return a;
  };
  for (const s of w.requests) {
    if (!(s.value > 0) || !counted(s)) continue;
    const k = keyOf(s);
    if (k === undefined) continue;
    const a = acc(k);
    a.requests += s.value;
    if (isSuccess(s.labels.response_code)) a.ok += s.value;
    if (s.labels.connection_security_policy === 'mutual_tls') a.mtls += s.value;
  }
  for (const s of w.durationBuckets) {
    if (!counted(s)) continue;
    const k = keyOf(s);
    if (k === undefined || !accs.has(k)) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    const b = accs.get(k)!.buckets;
    b.set(le, (b.get(le) ?? 0) + s.value);
  }
  const out = new Map<string, Golden & { mtls: number | null }>();
  for (const [k, a] of accs) out.set(k, finish(a, w.seconds));
  return out;
}

/** Open TCP connections per destination workload ("ns/name"), from destination reports. */
export function tcpOpen(w: WindowData): Map<string, number> {
  const out = new Map<string, number>();
  const add = (s: Sample, sign: number) => {
    if (s.labels.reporter !== 'destination') return;
    const d = subject(s, 'destination');
    const k = `${d.namespace}/${d.name}`;
    out.set(k, (out.get(k) ?? 0) + sign * s.value);
  };
  for (const s of w.tcpOpened) add(s, 1);
  for (const s of w.tcpClosed) add(s, -1);
  for (const [k, v] of out) out.set(k, Math.max(0, Math.round(v)));
  return out;
}

export const destKey = (s: Sample) => {
  const d = subject(s, 'destination');
  return `${d.namespace}/${d.name}`;
};
export const srcKey = (s: Sample) => {
  const d = subject(s, 'source');
  return `${d.namespace}/${d.name}`;
};
export const svcKey = (s: Sample) => {
  const v = serviceOf(s);
  return v ? `${v.namespace}/${v.name}` : undefined;
};

export interface WorkloadInfo {
  namespace: string;
  name: string;
  pods: number;
  meshed: number;
}

function split(k: string): { namespace: string; name: string } {
  const i = k.indexOf('/');
  return { namespace: k.slice(0, i), name: k.slice(i + 1) };
}

/** Inbound golden metrics per workload: every known workload gets a row, with traffic or not. */
export function workloadRows(w: WindowData, known: WorkloadInfo[]): StatRow[] {
  const g = groupGolden(w, destKey, destKey, 'destination');
  const tcp = tcpOpen(w);
  const keys = new Set([...known.map((k) => `${k.namespace}/${k.name}`), ...g.keys()]);
  keys.delete(`${UNKNOWN}/${UNKNOWN}`);
  const info = new Map(known.map((k) => [`${k.namespace}/${k.name}`, k]));
  return [...keys].sort().map((k) => {
    const i = info.get(k);
    return { ...split(k), kind: 'workload', meshed: i ? `${i.meshed}/${i.pods}` : null, tcpConn: tcp.get(k) ?? (i ? 0 : null), ...(g.get(k) ?? finish(undefined, w.seconds)) };
  });
}

/** Inbound golden metrics per Service (requests addressed to it), every known Service included. */
export function serviceRows(w: WindowData, known: { namespace: string; name: string }[]): StatRow[] {
  const g = groupGolden(w, svcKey, destKey, 'destination');
  const keys = new Set([...known.map((k) => `${k.namespace}/${k.name}`), ...g.keys()]);
  return [...keys].sort().map((k) => ({ ...split(k), kind: 'service', meshed: null, tcpConn: null, ...(g.get(k) ?? finish(undefined, w.seconds)) }));
}

/** The backends (destination workloads) behind one Service, as the callers' proxies reached them. */
export function backendRows(w: WindowData, service: string): StatRow[] {
  const g = groupGolden(w, (s) => (svcKey(s) === service ? destKey(s) : undefined), destKey, 'destination');
  return [...g].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => ({ ...split(k), kind: 'backend', meshed: null, tcpConn: null, ...v }));
}

/** Outbound: what one workload calls, per destination Service (or workload when no Service was used). */
export function outboundRows(w: WindowData, source: string): StatRow[] {
  const dst = (s: Sample) => (srcKey(s) === source ? (svcKey(s) ?? destKey(s)) : undefined);
  const g = groupGolden(w, dst, srcKey, 'source');
  return [...g].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => ({ ...split(k), kind: 'service', meshed: null, tcpConn: null, ...v }));
}

/** Inbound per calling workload of one destination workload. */
export function callerRows(w: WindowData, dest: string): StatRow[] {
  const g = groupGolden(w, (s) => (destKey(s) === dest ? srcKey(s) : undefined), destKey, 'destination');
  return [...g].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => ({ ...split(k), kind: 'workload', meshed: null, tcpConn: null, ...v }));
}

export interface Edge extends Golden {
  source: string;
  destination: string;
  mtls: number | null;
  protocol: 'http' | 'tcp';
  tcpBytes: number;
}

/** Who calls whom: HTTP edges with golden metrics, plus TCP-only edges (bytes moved). */
export function edges(w: WindowData): Edge[] {
  const key = (s: Sample) => `${srcKey(s)}\u0000${destKey(s)}`;
  const g = groupGolden(w, key, destKey, 'destination');
  const out: Edge[] = [];
  for (const [k, v] of g) {
    const [source, destination] = k.split('\u0000') as [string, string];
    out.push({ source, destination, protocol: 'http', tcpBytes: 0, ...v });
  }
  const seen = new Set(g.keys());
  const tcp = new Map<string, { mtls: boolean; opened: number }>();
  for (const s of w.tcpOpened) {
    if (s.labels.reporter !== 'destination' || s.labels.request_protocol === 'http') continue;
    const k = key(s);
    if (seen.has(k)) continue;
    const t = tcp.get(k) ?? { mtls: false, opened: 0 };
    t.opened += s.value;
    t.mtls ||= s.labels.connection_security_policy === 'mutual_tls';
    tcp.set(k, t);
  }
  for (const [k, t] of tcp) {
    const [source, destination] = k.split('\u0000') as [string, string];
    out.push({ source, destination, protocol: 'tcp', tcpBytes: 0, requests: 0, rps: 0, success: null, p50: null, p95: null, p99: null, mtls: t.mtls ? 1 : 0 });
  }
  return out.sort((a, b) => (a.source + a.destination).localeCompare(b.source + b.destination));
}
