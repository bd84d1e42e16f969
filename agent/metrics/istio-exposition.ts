// Scrape-time rendering of the Istio families counted in istio.ts: each family is registered in the agent's
// prom-client Registry as an object with prom-client's metric shape, whose values are read from the plain
// numbers only when Prometheus asks (nothing here runs per request).
import type { Registry } from 'prom-client';
import type { Distribution, IstioMetrics, Labels, RequestSeries, TcpCounter } from './istio.js';

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

/** One histogram per request series, read through `pick` (duration, request bytes or response bytes). */
function histogramValues(name: string, series: readonly RequestSeries[], pick: (s: RequestSeries) => Distribution): MetricValue[] {
  const out: MetricValue[] = [];
  const bucket = `${name}_bucket`;
  for (const s of series) {
    const d = pick(s);
    const bounds = d.bounds;
    let acc = 0;
    for (let i = 0; i < bounds.length; i++) {
      acc += d.buckets[i]!;
      out.push({ labels: { le: bounds[i]! }, sharedLabels: s.labels, value: acc, metricName: bucket, exemplar: null });
    }
    out.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket, exemplar: null });
    out.push({ labels: {}, sharedLabels: s.labels, value: d.sum, metricName: `${name}_sum` });
    out.push({ labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${name}_count` });
  }
  return out;
}

/** The Istio families, with the names and help texts the agent exports. */
export function registerIstioCollectors(registry: Registry, m: IstioMetrics): void {
  const counter = (name: string, help: string, values: () => MetricValue[]) => registry.registerMetric(new Family(name, help, 'counter', values) as never);
  const histogram = (name: string, help: string, pick: (s: RequestSeries) => Distribution) =>
    registry.registerMetric(new Family(name, help, 'histogram', () => histogramValues(name, m.requestSeries, pick)) as never);
  const tcp = (list: readonly TcpCounter[], value: (c: TcpCounter) => number) => () => list.map((c) => ({ labels: c.labels, value: value(c) }));
  counter('istio_requests_total', 'Requests proxied, by response code', () => m.requestSeries.map((s) => ({ labels: s.labels, value: s.count })));
  histogram('istio_request_duration_milliseconds', 'Request duration as seen by the proxy, in milliseconds', (s) => s.duration);
  histogram('istio_request_bytes', 'HTTP request body sizes, in bytes', (s) => s.requestBytes);
  histogram('istio_response_bytes', 'HTTP response body sizes, in bytes', (s) => s.responseBytes);
  counter('istio_tcp_connections_opened_total', 'TCP connections opened', tcp(m.tcpSeries.opened, (c) => c.opened));
  counter('istio_tcp_connections_closed_total', 'TCP connections closed', tcp(m.tcpSeries.closed, (c) => c.closed));
  counter('istio_tcp_sent_bytes_total', 'Bytes sent to the connection\'s client (response direction)', tcp(m.tcpSeries.sent, (c) => c.sent));
  counter('istio_tcp_received_bytes_total', 'Bytes received from the connection\'s client (request direction)', tcp(m.tcpSeries.received, (c) => c.received));
}
