// Request and TCP telemetry under Istio's standard names and labels, so existing Grafana and Kiali
// dashboards work unchanged. The per-request path is hot, so nothing on it touches a label: the pipeline
// asks once per route or connection for a handle (`requests(peer, protocol)`, `tcp(peer, protocol)`) and
// bumps plain numbers on it; a request with a response code seen before on that handle is a compare, three
// adds and a bucket scan (prom-client's labelled children re-hashed ten labels per inc/observe, ~2 µs).
// The label strings are built once per series; `IstioCollector` renders everything at scrape time through
// prom-client's registry, so names, labels, values and series order are exactly what prom-client's own
// Counter and Histogram produced (test/metrics/istio-exposition.test.ts compares the two).
import type { Registry } from 'prom-client';

export type Reporter = 'source' | 'destination';
export type SecurityPolicy = 'mutual_tls' | 'none';

/** Who talked to whom over one connection; fixed for the connection's life. */
export interface PeerLabels {
  reporter: Reporter;
  source_workload: string;
  source_workload_namespace: string;
  source_principal: string;
  destination_workload: string;
  destination_workload_namespace: string;
  destination_service: string;
  connection_security_policy: SecurityPolicy;
}

const PEER_LABELS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'destination_workload',
  'destination_workload_namespace',
  'destination_service',
  'connection_security_policy',
] as const;

// Istio's default buckets for istio_request_duration_milliseconds.
export const DURATION_BUCKETS: readonly number[] = Object.freeze([0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000]);

type Labels = Record<string, string>;

/** One (peer, protocol, response code) series: the counter and the histogram share it. */
export class RequestSeries {
  count = 0;
  sum = 0;
  /** per-bucket (not cumulative) counts; the last slot is above every bound (only in +Inf) */
  readonly buckets: Float64Array;

  constructor(
    readonly code: number,
    readonly labels: Labels,
  ) {
    this.buckets = new Float64Array(DURATION_BUCKETS.length + 1);
  }
}

/** The handle for one peer label set and protocol: every response code it has seen. */
export class RequestCounter {
  private last: RequestSeries | undefined;
  private readonly byCode = new Map<number, RequestSeries>();

  constructor(
    private readonly peer: PeerLabels,
    private readonly protocol: string,
    private readonly created: (s: RequestSeries) => void,
  ) {}

  /** One finished request: its response code (0 when none was sent) and how long it took. */
  record(code: number, durationMs: number): void {
    let s = this.last;
    if (s === undefined || s.code !== code) s = this.series(code);
    s.count += 1;
    // prom-client refuses non-finite observations (it threw); a clock oddity is better counted as 0.
    const ms = durationMs === durationMs && durationMs !== Infinity && durationMs !== -Infinity ? durationMs : 0;
    s.sum += ms;
    const bounds = DURATION_BUCKETS;
    let i = 0;
    while (i < bounds.length && ms > bounds[i]!) i++;
    s.buckets[i]! += 1;
  }

  private series(code: number): RequestSeries {
    let s = this.byCode.get(code);
    if (s === undefined) {
      s = new RequestSeries(code, { ...this.peer, request_protocol: this.protocol, response_code: String(code) });
      this.byCode.set(code, s);
      this.created(s);
    }
    this.last = s;
    return s;
  }
}

/** The handle for one connection's peer label set and protocol (tcp, http). */
export class TcpCounter {
  opened = 0;
  closed = 0;
  /** bytes back to the client (response direction) */
  sent = 0;
  /** bytes from the client towards the server (request direction) */
  received = 0;
  /** bit per family (1 opened, 2 closed, 4 sent, 8 received): whether this series has been exported yet */
  private shown = 0;

  constructor(
    readonly labels: Labels,
    private readonly created: (c: TcpCounter, family: number) => void,
  ) {}

  open(): void {
    this.opened += 1;
    if ((this.shown & 1) === 0) this.show(1);
  }

  /** `received`: bytes from the client towards the server; `sent`: bytes back to the client. */
  close(received: number, sent: number): void {
    this.closed += 1;
    if ((this.shown & 2) === 0) this.show(2);
    if (received > 0) {
      this.received += received;
      if ((this.shown & 8) === 0) this.show(8);
    }
    if (sent > 0) {
      this.sent += sent;
      if ((this.shown & 4) === 0) this.show(4);
    }
  }

  private show(family: number): void {
    this.shown |= family;
    this.created(this, family);
  }
}

interface PeerHandles {
  requests: Map<string, RequestCounter>;
  tcp: Map<string, TcpCounter>;
}

export class IstioMetrics {
  /** series in the order they first counted, per family (prom-client exported them in that order) */
  readonly requestSeries: RequestSeries[] = [];
  readonly tcpSeries: { opened: TcpCounter[]; closed: TcpCounter[]; sent: TcpCounter[]; received: TcpCounter[] } = { opened: [], closed: [], sent: [], received: [] };
  // Peer label objects are shared per route/connection: find their handles by identity first, and by
  // value when a new config version built an equal label set (the series must stay the same).
  private readonly byObject = new WeakMap<PeerLabels, PeerHandles>();
  private readonly byValue = new Map<string, PeerHandles>();
  private readonly onRequestSeries = (s: RequestSeries) => this.requestSeries.push(s);
  private readonly onTcpSeries = (c: TcpCounter, family: number) => {
    const f = this.tcpSeries;
    (family === 1 ? f.opened : family === 2 ? f.closed : family === 4 ? f.sent : f.received).push(c);
  };

  /** With a registry, the Istio families are exported by it (scrape time only). */
  constructor(registry?: Registry) {
    if (registry) registerIstioCollectors(registry, this);
  }

  /** The handle for requests between this peer label set over this protocol; take it once, keep it. */
  requests(peer: PeerLabels, protocol: string): RequestCounter {
    const h = this.handles(peer);
    let c = h.requests.get(protocol);
    if (c === undefined) {
      c = new RequestCounter(peer, protocol, this.onRequestSeries);
      h.requests.set(protocol, c);
    }
    return c;
  }

  tcp(peer: PeerLabels, protocol = 'tcp'): TcpCounter {
    const h = this.handles(peer);
    let c = h.tcp.get(protocol);
    if (c === undefined) {
      c = new TcpCounter({ ...peer, request_protocol: protocol }, this.onTcpSeries);
      h.tcp.set(protocol, c);
    }
    return c;
  }

  /** Convenience for callers without a handle: a lookup by label object, then the same adds. */
  request(peer: PeerLabels, protocol: string, code: number, durationMs: number): void {
    this.requests(peer, protocol).record(code, durationMs);
  }

  tcpOpen(peer: PeerLabels, protocol = 'tcp'): void {
    this.tcp(peer, protocol).open();
  }

  /** `received`: bytes from the client towards the server; `sent`: bytes back to the client. */
  tcpClose(peer: PeerLabels, received: number, sent: number, protocol = 'tcp'): void {
    this.tcp(peer, protocol).close(received, sent);
  }

  /**
   * Sums for the controller report, without rendering anything: what this node's proxy handled, each request
   * and connection once. A same-node exchange is reported by both reporters (source and destination,
   * plaintext); one that arrived through the tunnel (mutual_tls) only by the destination here.
   */
  totals(): { requests: number; requestErrors: number; connectionsOpened: number } {
    const once = (l: Labels) => l.reporter !== 'destination' || l.connection_security_policy === 'mutual_tls';
    let requests = 0;
    let requestErrors = 0;
    for (const s of this.requestSeries) {
      if (!once(s.labels)) continue;
      requests += s.count;
      if (s.code >= 500 || s.code === 0) requestErrors += s.count;
    }
    let connectionsOpened = 0;
    for (const c of this.tcpSeries.opened) if (once(c.labels)) connectionsOpened += c.opened;
    return { requests, requestErrors, connectionsOpened };
  }

  private handles(peer: PeerLabels): PeerHandles {
    let h = this.byObject.get(peer);
    if (h === undefined) {
      const key = PEER_LABELS.map((n) => peer[n]).join('\u0000');
      h = this.byValue.get(key);
      if (h === undefined) {
        h = { requests: new Map(), tcp: new Map() };
        this.byValue.set(key, h);
      }
      this.byObject.set(peer, h);
    }
    return h;
  }
}

// ---- exposition ------------------------------------------------------------------------------------

/** What prom-client's registry renders (the shape its own Counter/Histogram return from get()). */
interface MetricValue {
  labels: Labels | Record<string, string | number>;
  value: number;
  metricName?: string;
  sharedLabels?: Labels;
  exemplar?: null;
}
interface MetricData {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: MetricValue[];
  aggregator: 'sum';
}

/** A family registered in a prom-client Registry whose values are read from our plain numbers at scrape. */
class Family {
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    private readonly values: () => MetricValue[],
  ) {}

  /** For text exposition: histogram series labels as sharedLabels, `le` first (prom-client's layout). */
  async getForPromString(): Promise<MetricData> {
    return { name: this.name, help: this.help, type: this.type, values: this.values(), aggregator: 'sum' };
  }

  /** For JSON (registry.getMetricsAsJSON, getSingleMetric().get()): labels merged, as prom-client does. */
  async get(): Promise<MetricData> {
    const values = this.values().map(({ sharedLabels, labels, ...v }) => ({ ...v, labels: { ...labels, ...sharedLabels } }));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: 'sum' };
  }

  reset(): void {}
}

function histogramValues(name: string, series: readonly RequestSeries[]): MetricValue[] {
  const out: MetricValue[] = [];
  const bucket = `${name}_bucket`;
  for (const s of series) {
    let acc = 0;
    for (let i = 0; i < DURATION_BUCKETS.length; i++) {
      acc += s.buckets[i]!;
      out.push({ labels: { le: DURATION_BUCKETS[i]! }, sharedLabels: s.labels, value: acc, metricName: bucket, exemplar: null });
    }
    out.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket, exemplar: null });
    out.push({ labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${name}_sum` });
    out.push({ labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${name}_count` });
  }
  return out;
}

/** The Istio families, with the names and help texts the agent has always exported. */
export function registerIstioCollectors(registry: Registry, m: IstioMetrics): void {
  const counter = (name: string, help: string, values: () => MetricValue[]) => registry.registerMetric(new Family(name, help, 'counter', values) as never);
  const tcp = (list: readonly TcpCounter[], pick: (c: TcpCounter) => number) => () => list.map((c) => ({ labels: c.labels, value: pick(c) }));
  counter('istio_requests_total', 'Requests proxied, by response code', () => m.requestSeries.map((s) => ({ labels: s.labels, value: s.count })));
  const duration = 'istio_request_duration_milliseconds';
  registry.registerMetric(new Family(duration, 'Request duration as seen by the proxy, in milliseconds', 'histogram', () => histogramValues(duration, m.requestSeries)) as never);
  counter('istio_tcp_connections_opened_total', 'TCP connections opened', tcp(m.tcpSeries.opened, (c) => c.opened));
  counter('istio_tcp_connections_closed_total', 'TCP connections closed', tcp(m.tcpSeries.closed, (c) => c.closed));
  counter('istio_tcp_sent_bytes_total', 'Bytes sent to the connection\'s client (response direction)', tcp(m.tcpSeries.sent, (c) => c.sent));
  counter('istio_tcp_received_bytes_total', 'Bytes received from the connection\'s client (request direction)', tcp(m.tcpSeries.received, (c) => c.received));
}
