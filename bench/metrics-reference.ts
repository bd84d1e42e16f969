// The agent's Istio metrics as they were before agent/metrics/istio.ts counted with plain numbers
// (main at d8467ab): prom-client Counter/Histogram children cached per (peer labels, response code), each
// inc/observe re-hashing its ten labels. Kept as the reference: bench/metrics.ts measures the per-request
// cost of both, and test/metrics/istio-exposition.test.ts checks the new one exports exactly what this did.
import { Counter, Histogram, type Registry } from 'prom-client';

import type { PeerLabels } from '../agent/metrics/istio.js';

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
const REQUEST_LABELS = [...PEER_LABELS, 'request_protocol', 'response_code'] as const;
const TCP_LABELS = [...PEER_LABELS, 'request_protocol'] as const;

// Istio's default buckets for istio_request_duration_milliseconds.
const DURATION_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

interface RequestChildren {
  total: Counter.Internal;
  duration: Histogram.Internal<string>;
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
    this.tcpOpened = new Counter({ name: 'istio_tcp_connections_opened_total', help: 'TCP connections opened', labelNames: TCP_LABELS, registers });
    this.tcpClosed = new Counter({ name: 'istio_tcp_connections_closed_total', help: 'TCP connections closed', labelNames: TCP_LABELS, registers });
    this.tcpSent = new Counter({ name: 'istio_tcp_sent_bytes_total', help: 'Bytes sent to the connection\'s client (response direction)', labelNames: TCP_LABELS, registers });
    this.tcpReceived = new Counter({ name: 'istio_tcp_received_bytes_total', help: 'Bytes received from the connection\'s client (request direction)', labelNames: TCP_LABELS, registers });
  }

  request(peer: PeerLabels, protocol: string, code: number, durationMs: number): void {
    const key = `${peerKey(peer)}\u0000${protocol}\u0000${code}`;
    let c = this.requestCache.get(key);
    if (!c) {
      const labels = { ...peer, request_protocol: protocol, response_code: String(code) };
      c = { total: this.requests.labels(labels), duration: this.duration.labels(labels) };
      this.requestCache.set(key, c);
    }
    c.total.inc();
    c.duration.observe(durationMs);
  }

  private tcp(peer: PeerLabels, protocol: string): TcpChildren {
    const key = `${peerKey(peer)}\u0000${protocol}`;
    let c = this.tcpCache.get(key);
    if (!c) {
      const labels = { ...peer, request_protocol: protocol };
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
    k = PEER_LABELS.map((n) => p[n]).join('\u0000');
    keys.set(p, k);
  }
  return k;
}
