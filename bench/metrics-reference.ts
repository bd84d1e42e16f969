// The agent's Istio metrics as they were before agent/metrics/istio.ts counted with plain numbers
// (main at d8467ab), extended with Istio's full label set and byte histograms: prom-client Counter/Histogram
// children cached per (peer labels, response code, gRPC status, flags), each inc/observe re-hashing its labels. Kept as the reference: bench/metrics.ts measures the per-request
// cost of both, and test/metrics/istio-exposition.test.ts checks the new one exports exactly what this did.
import { Counter, Histogram, type Registry } from 'prom-client';

import type { PeerLabels } from '../agent/metrics/istio.js';

// Istio's label order; connection_security_policy is the last label of every family.
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
] as const;
const REQUEST_LABELS = [...PEER_LABELS, 'request_protocol', 'response_code', 'grpc_response_status', 'response_flags', 'connection_security_policy'] as const;
const TCP_LABELS = [...PEER_LABELS, 'request_protocol', 'response_flags', 'connection_security_policy'] as const;

// Istio's default buckets for istio_request_duration_milliseconds and for the byte histograms.
const DURATION_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];
const BYTES_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000];

/** A label object in a fixed order (prom-client renders labels in the object's order). */
function ordered(names: readonly string[], values: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) out[n] = values[n]!;
  return out;
}

interface RequestChildren {
  total: Counter.Internal;
  duration: Histogram.Internal<string>;
  requestBytes: Histogram.Internal<string>;
  responseBytes: Histogram.Internal<string>;
}

interface TcpChildren {
  opened: Counter.Internal;
  closed: Counter.Internal;
  sent: Counter.Internal;
  received: Counter.Internal;
}

export class PromClientIstioMetrics {
  private readonly requests: Counter<string>;
  private readonly duration: Histogram<string>;
  private readonly requestBytes: Histogram<string>;
  private readonly responseBytes: Histogram<string>;
  private readonly tcpOpened: Counter<string>;
  private readonly tcpClosed: Counter<string>;
  private readonly tcpSent: Counter<string>;
  private readonly tcpReceived: Counter<string>;
  private readonly requestCache = new Map<string, RequestChildren>();
  private readonly tcpCache = new Map<string, TcpChildren>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({ name: 'istio_requests_total', help: 'Requests proxied, by response code', labelNames: REQUEST_LABELS, registers });
    this.duration = new Histogram({
      name: 'istio_request_duration_milliseconds',
      help: 'Request duration as seen by the proxy, in milliseconds',
      labelNames: REQUEST_LABELS,
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.requestBytes = new Histogram({ name: 'istio_request_bytes', help: 'HTTP request body sizes, in bytes', labelNames: REQUEST_LABELS, buckets: BYTES_BUCKETS, registers });
    this.responseBytes = new Histogram({ name: 'istio_response_bytes', help: 'HTTP response body sizes, in bytes', labelNames: REQUEST_LABELS, buckets: BYTES_BUCKETS, registers });
    this.tcpOpened = new Counter({ name: 'istio_tcp_connections_opened_total', help: 'TCP connections opened', labelNames: TCP_LABELS, registers });
    this.tcpClosed = new Counter({ name: 'istio_tcp_connections_closed_total', help: 'TCP connections closed', labelNames: TCP_LABELS, registers });
    this.tcpSent = new Counter({ name: 'istio_tcp_sent_bytes_total', help: 'Bytes sent to the connection\'s client (response direction)', labelNames: TCP_LABELS, registers });
    this.tcpReceived = new Counter({ name: 'istio_tcp_received_bytes_total', help: 'Bytes received from the connection\'s client (request direction)', labelNames: TCP_LABELS, registers });
  }

  request(peer: PeerLabels, protocol: string, code: number, durationMs: number, requestBytes = 0, responseBytes = 0, flags = '-', grpc = -1): void {
    const key = `${peerKey(peer)}\u0000${protocol}\u0000${code}\u0000${grpc}\u0000${flags}`;
    let c = this.requestCache.get(key);
    if (!c) {
      const labels = ordered(REQUEST_LABELS, { ...peer, request_protocol: protocol, response_code: String(code), grpc_response_status: grpc < 0 ? '' : String(grpc), response_flags: flags });
      c = { total: this.requests.labels(labels), duration: this.duration.labels(labels), requestBytes: this.requestBytes.labels(labels), responseBytes: this.responseBytes.labels(labels) };
      this.requestCache.set(key, c);
    }
    c.total.inc();
    c.duration.observe(durationMs);
    c.requestBytes.observe(requestBytes);
    c.responseBytes.observe(responseBytes);
  }

  private tcp(peer: PeerLabels, protocol: string): TcpChildren {
    const key = `${peerKey(peer)}\u0000${protocol}`;
    let c = this.tcpCache.get(key);
    if (!c) {
      const labels = ordered(TCP_LABELS, { ...peer, request_protocol: protocol, response_flags: '-' });
      c = { opened: this.tcpOpened.labels(labels), closed: this.tcpClosed.labels(labels), sent: this.tcpSent.labels(labels), received: this.tcpReceived.labels(labels) };
      this.tcpCache.set(key, c);
    }
    return c;
  }

  tcpOpen(peer: PeerLabels, protocol = 'tcp'): void {
    this.tcp(peer, protocol).opened.inc();
  }

  /** `received`: bytes from the client towards the server; `sent`: bytes back to the client. */
  tcpClose(peer: PeerLabels, received: number, sent: number, protocol = 'tcp'): void {
    const c = this.tcp(peer, protocol);
    c.closed.inc();
    if (received > 0) c.received.inc(received);
    if (sent > 0) c.sent.inc(sent);
  }
}

// Peer label objects are frozen per connection; memoise their key on the object itself.
const keys = new WeakMap<PeerLabels, string>();
function peerKey(p: PeerLabels): string {
  let k = keys.get(p);
  if (k === undefined) {
    k = [...PEER_LABELS.map((n) => p[n]), p.connection_security_policy].join('\u0000');
    keys.set(p, k);
  }
  return k;
}
