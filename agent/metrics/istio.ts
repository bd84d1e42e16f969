// Request and TCP telemetry under Istio's standard names and labels, so existing Grafana and Kiali
// dashboards work unchanged. The per-request path is hot, so nothing on it touches a label: the pipeline
// asks once per route or connection for a handle (`requests(peer, protocol)`, `tcp(peer, protocol)`) and
// bumps plain numbers on it; a request whose response code, gRPC status and flags were seen before on that
// handle is three compares, a few adds and three bucket lookups (prom-client's labelled children re-hashed
// twenty-five labels per inc/observe, ~2 µs each). The label strings are built once per series;
// istio-exposition.ts renders everything at scrape time through prom-client's registry, so names, labels,
// values and series order are exactly what prom-client's own Counter and Histogram produce
// (test/metrics/istio-exposition.test.ts compares the two).
import type { Registry } from 'prom-client';
import { registerIstioCollectors } from './istio-exposition.js';
import { NO_GRPC_STATUS } from './response-labels.js';

export type Reporter = 'source' | 'destination';
export type SecurityPolicy = 'mutual_tls' | 'none';

/** Who talked to whom over one connection; fixed for the connection's life (agent/metrics/peer-labels.ts builds it). */
export interface PeerLabels {
  reporter: Reporter;
  source_workload: string;
  source_canonical_service: string;
  source_canonical_revision: string;
  source_workload_namespace: string;
  source_principal: string;
  source_app: string;
  source_version: string;
  source_cluster: string;
  destination_workload: string;
  destination_workload_namespace: string;
  destination_principal: string;
  destination_app: string;
  destination_version: string;
  destination_service: string;
  destination_canonical_service: string;
  destination_canonical_revision: string;
  destination_service_name: string;
  destination_service_namespace: string;
  destination_cluster: string;
  connection_security_policy: SecurityPolicy;
}

/** Istio's label order up to request_protocol (connection_security_policy comes last, after the per-request ones). */
const PEER_LABELS = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service_name',
  'destination_service_namespace',
  'destination_cluster',
] as const satisfies readonly (keyof PeerLabels)[];

// Istio's default buckets for istio_request_duration_milliseconds, and for istio_request_bytes/istio_response_bytes.
export const DURATION_BUCKETS: readonly number[] = Object.freeze([0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000]);
export const BYTES_BUCKETS: readonly number[] = Object.freeze([1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000]);

export type Labels = Record<string, string>;

/** Istio's size buckets are the powers of ten 1 … 10^8: a few compares find a size's slot (upper-inclusive, 9 is +Inf only). */
function bytesSlot(v: number): number {
  if (v <= 1) return 0;
  if (v <= 1000) return v <= 10 ? 1 : v <= 100 ? 2 : 3;
  if (v <= 1000000) return v <= 10000 ? 4 : v <= 100000 ? 5 : 6;
  return v <= 10000000 ? 7 : v <= 100000000 ? 8 : 9;
}

/** One histogram's plain numbers: per-bucket (not cumulative) counts and the sum; the count is the series'. */
export class Distribution {
  sum = 0;
  readonly buckets: Float64Array;
  constructor(readonly bounds: readonly number[]) {
    this.buckets = new Float64Array(bounds.length + 1);
  }
}

/** One (peer, protocol, response code, gRPC status, flags) series: the counter and the three histograms share it. */
export class RequestSeries {
  count = 0;
  readonly duration = new Distribution(DURATION_BUCKETS);
  readonly requestBytes = new Distribution(BYTES_BUCKETS);
  readonly responseBytes = new Distribution(BYTES_BUCKETS);

  constructor(
    readonly code: number,
    /** NO_GRPC_STATUS when the label is empty */
    readonly grpc: number,
    readonly flags: string,
    readonly labels: Labels,
  ) {}

  /** the duration histogram's sum and buckets, as before the byte histograms came */
  get sum(): number {
    return this.duration.sum;
  }
  get buckets(): Float64Array {
    return this.duration.buckets;
  }
}

/** The labels of a request series, in Istio's order. */
function requestLabels(peer: PeerLabels, protocol: string, code: number, grpc: number, flags: string): Labels {
  const l: Labels = {};
  for (const n of PEER_LABELS) l[n] = peer[n];
  l['request_protocol'] = protocol;
  l['response_code'] = String(code);
  l['grpc_response_status'] = grpc === NO_GRPC_STATUS ? '' : String(grpc);
  l['response_flags'] = flags;
  l['connection_security_policy'] = peer.connection_security_policy;
  return l;
}

/** The labels of a TCP series: no response code; flags are "-" because only connections that reached their upstream are counted. */
function tcpLabels(peer: PeerLabels, protocol: string): Labels {
  const l: Labels = {};
  for (const n of PEER_LABELS) l[n] = peer[n];
  l['request_protocol'] = protocol;
  l['response_flags'] = '-';
  l['connection_security_policy'] = peer.connection_security_policy;
  return l;
}

/** The handle for one peer label set and protocol: every (code, gRPC status, flags) it has seen. */
export class RequestCounter {
  private last: RequestSeries | undefined;
  private readonly seen: RequestSeries[] = [];

  constructor(
    private readonly peer: PeerLabels,
    private readonly protocol: string,
    private readonly created: (s: RequestSeries) => void,
  ) {}

  /**
   * One finished request: its response code (0 when none was sent), how long it took, the body bytes each
   * way, Envoy's response flags ("-" when none, flagsLabel) and its gRPC status (NO_GRPC_STATUS when none).
   */
  record(code: number, durationMs: number, requestBytes = 0, responseBytes = 0, flags = '-', grpc = NO_GRPC_STATUS): void {
    let s = this.last;
    if (s === undefined || s.code !== code || s.grpc !== grpc || s.flags !== flags) s = this.series(code, grpc, flags);
    s.count += 1;
    // Inlined rather than a method per histogram: this runs for every request (bench/metrics.ts).
    // prom-client refuses non-finite observations (it threw); a clock oddity is better counted as 0.
    const ms = durationMs === durationMs && durationMs !== Infinity && durationMs !== -Infinity ? durationMs : 0;
    const d = s.duration;
    d.sum += ms;
    const bounds = DURATION_BUCKETS;
    let i = 0;
    while (i < bounds.length && ms > bounds[i]!) i++;
    d.buckets[i]! += 1;
    const q = s.requestBytes;
    q.sum += requestBytes;
    q.buckets[bytesSlot(requestBytes)]! += 1;
    const r = s.responseBytes;
    r.sum += responseBytes;
    r.buckets[bytesSlot(responseBytes)]! += 1;
  }

  /** A handle rarely sees more than a few outcomes: a scan beats building a key per request. */
  private series(code: number, grpc: number, flags: string): RequestSeries {
    let s: RequestSeries | undefined;
    for (const x of this.seen) {
      if (x.code === code && x.grpc === grpc && x.flags === flags) {
        s = x;
        break;
      }
    }
    if (s === undefined) {
      s = new RequestSeries(code, grpc, flags, requestLabels(this.peer, this.protocol, code, grpc, flags));
      this.seen.push(s);
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
      c = new TcpCounter(tcpLabels(peer, protocol), this.onTcpSeries);
      h.tcp.set(protocol, c);
    }
    return c;
  }

  /** Convenience for callers without a handle: a lookup by label object, then the same adds (RequestCounter.record). */
  request(peer: PeerLabels, protocol: string, code: number, durationMs: number, requestBytes = 0, responseBytes = 0, flags = '-', grpc = NO_GRPC_STATUS): void {
    this.requests(peer, protocol).record(code, durationMs, requestBytes, responseBytes, flags, grpc);
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
    const once = (l: Labels) => l['reporter'] !== 'destination' || l['connection_security_policy'] === 'mutual_tls';
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
      const key = PEER_LABELS.map((n) => peer[n]).join('\u0000') + '\u0000' + peer.connection_security_policy;
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
