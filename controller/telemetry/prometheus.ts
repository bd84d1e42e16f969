// The same window read from Prometheus (as linkerd viz reads its Prometheus): increase() of the request
// counters and buckets over the window, summed by the golden metrics' labels, and the TCP counters now.
import { WeftError } from '../../common/errors.js';
import type { Sample } from './exposition.js';
import { DURATION_BUCKET, GROUP_LABELS, REQUEST_BYTES_SUM, REQUESTS, RESPONSE_BYTES_SUM, TCP_CLOSED, TCP_OPENED, type WindowData } from './window.js';

interface VectorResult {
  status: string;
  error?: string;
  data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

export class PrometheusClient {
  constructor(
    readonly url: string,
    private readonly timeoutMs = 5000,
  ) {}

  /** An instant query; samples are named after `name`. */
  async query(promql: string, name: string, atSeconds?: number): Promise<Sample[]> {
    const u = new URL('/api/v1/query', this.url);
    u.searchParams.set('query', promql);
    if (atSeconds !== undefined) u.searchParams.set('time', String(atSeconds));
    let res: Response;
    try {
      res = await fetch(u, { signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      throw new WeftError('WEFT_ERR_PROMETHEUS', `cannot reach Prometheus at ${this.url}: ${(e as { cause?: Error }).cause?.message ?? (e as Error).message}`);
    }
    const body = (await res.json().catch(() => ({ status: 'error', error: `HTTP ${res.status}` }))) as VectorResult;
    if (body.status !== 'success' || !body.data) throw new WeftError('WEFT_ERR_PROMETHEUS', `Prometheus at ${this.url} refused ${promql}: ${body.error ?? res.status}`);
    return body.data.result.map((r) => ({ name, labels: r.metric, value: Number(r.value[1]) }));
  }

  async window(seconds: number): Promise<WindowData> {
    const by = GROUP_LABELS.join(', ');
    const at = Date.now() / 1000;
    const w = `${Math.max(1, Math.round(seconds))}s`;
    const [requests, durationBuckets, requestBytes, responseBytes, tcpOpened, tcpClosed] = await Promise.all([
      this.query(`sum by (${by}) (increase(${REQUESTS}[${w}]))`, REQUESTS, at),
      this.query(`sum by (${by}, le) (increase(${DURATION_BUCKET}[${w}]))`, DURATION_BUCKET, at),
      this.query(`sum by (${by}) (increase(${REQUEST_BYTES_SUM}[${w}]))`, REQUEST_BYTES_SUM, at),
      this.query(`sum by (${by}) (increase(${RESPONSE_BYTES_SUM}[${w}]))`, RESPONSE_BYTES_SUM, at),
      this.query(`sum by (${by}) (${TCP_OPENED})`, TCP_OPENED, at),
      this.query(`sum by (${by}) (${TCP_CLOSED})`, TCP_CLOSED, at),
    ]);
    return { seconds: Math.max(1, Math.round(seconds)), requests, durationBuckets, requestBytes, responseBytes, tcpOpened, tcpClosed, source: 'prometheus', at: new Date(at * 1000).toISOString() };
  }
}
