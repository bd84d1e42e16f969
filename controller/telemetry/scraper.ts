// The controller scrapes every agent's :15020/metrics itself when no Prometheus is configured (linkerd viz
// reads Prometheus; Weft works without one): a short history of snapshots per node, from which a window's
// counter increases are taken (a counter that went down was reset by an agent restart: its new value is the
// increase, as Prometheus' increase() treats resets).
import type { Logger } from '../../common/log.js';
import { parseExposition, seriesKey, type Sample } from './exposition.js';
import { DURATION_BUCKET, REQUEST_BYTES_SUM, REQUESTS, RESPONSE_BYTES_SUM, TCP_CLOSED, TCP_OPENED, type WindowData } from './window.js';
import { ENDPOINT_METRICS } from '../api/endpoint-status.js';

export const AUTHZ_DECISIONS = 'weft_authz_decisions_total';
const KEEP = new Set<string>([REQUESTS, DURATION_BUCKET, REQUEST_BYTES_SUM, RESPONSE_BYTES_SUM, TCP_OPENED, TCP_CLOSED, AUTHZ_DECISIONS, ...ENDPOINT_METRICS]);

interface Snapshot {
  at: number;
  samples: Map<string, Sample>;
}

export interface ScrapeTarget {
  node: string;
  url: string;
}

export interface ScraperOptions {
  targets: () => ScrapeTarget[];
  intervalMs?: number;
  historyMs?: number;
  timeoutMs?: number;
  logger: Logger;
  now?: () => number;
  fetchText?: (url: string, timeoutMs: number) => Promise<string>;
}

async function defaultFetch(url: string, timeoutMs: number): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.text();
}

export class AgentScraper {
  private readonly history = new Map<string, Snapshot[]>();
  private readonly errors = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly fetchText: (url: string, timeoutMs: number) => Promise<string>;
  private inFlight: Promise<void> | undefined;

  constructor(private readonly o: ScraperOptions) {
    this.now = o.now ?? Date.now;
    this.fetchText = o.fetchText ?? defaultFetch;
  }

  start(): void {
    void this.scrapeAll();
    this.timer = setInterval(() => void this.scrapeAll(), this.o.intervalMs ?? 5000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One scrape of every agent (concurrent scrapes are joined). */
  scrapeAll(): Promise<void> {
    this.inFlight ??= this.doScrape().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async doScrape(): Promise<void> {
    const targets = this.o.targets();
    const live = new Set(targets.map((t) => t.node));
    for (const n of this.history.keys()) if (!live.has(n)) this.history.delete(n);
    await Promise.all(
      targets.map(async (t) => {
        // the time the scrape started, as Prometheus stamps its samples: a slow answer (a busy agent) must not
        // shorten the window its counters are divided by
        const at = this.now();
        try {
          const text = await this.fetchText(t.url, this.o.timeoutMs ?? 3000);
          const samples = new Map<string, Sample>();
          for (const s of parseExposition(text, (n) => KEEP.has(n))) samples.set(seriesKey(s.name, s.labels), s);
          const h = this.history.get(t.node) ?? [];
          h.push({ at, samples });
          const horizon = this.now() - (this.o.historyMs ?? 10 * 60_000);
          while (h.length > 2 && h[0]!.at < horizon) h.shift();
          this.history.set(t.node, h);
          this.errors.delete(t.node);
        } catch (e) {
          const msg = (e as { cause?: Error }).cause?.message ?? (e as Error).message;
          if (this.errors.get(t.node) !== msg) this.o.logger.warn('cannot scrape agent metrics', { node: t.node, url: t.url, error: msg });
          this.errors.set(t.node, msg);
        }
      }),
    );
  }

  /** The latest value of every series named `name`, per node (counters since each agent started). */
  latest(name: string): Sample[] {
    const out: Sample[] = [];
    for (const [node, h] of this.history) {
      const last = h[h.length - 1];
      if (!last) continue;
      for (const s of last.samples.values()) if (s.name === name) out.push({ name: s.name, labels: { ...s.labels, node }, value: s.value });
    }
    return out;
  }

  /** per node: the last scrape error, if the last scrape failed */
  scrapeErrors(): Record<string, string> {
    return Object.fromEntries(this.errors);
  }

  /**
   * Increases over (about) the last `seconds`: per node, newest snapshot minus the newest one at least
   * `seconds` older (or the oldest there is). Null when no node has two snapshots yet.
   */
  window(seconds: number): WindowData | null {
    const requests: Sample[] = [];
    const durationBuckets: Sample[] = [];
    const requestBytes: Sample[] = [];
    const responseBytes: Sample[] = [];
    const tcpOpened: Sample[] = [];
    const tcpClosed: Sample[] = [];
    let spans = 0;
    let nodes = 0;
    let end = 0;
    for (const h of this.history.values()) {
      if (h.length < 2) continue;
      const last = h[h.length - 1]!;
      let base = h[0]!;
      for (const s of h) if (s.at <= last.at - seconds * 1000 && s !== last) base = s;
      spans += (last.at - base.at) / 1000;
      nodes++;
      end = Math.max(end, last.at);
      for (const [k, s] of last.samples) {
        if (s.name === AUTHZ_DECISIONS) continue;
        if (s.name === TCP_OPENED) tcpOpened.push(s);
        else if (s.name === TCP_CLOSED) tcpClosed.push(s);
        else {
          const prev = base.samples.get(k)?.value ?? 0;
          const inc = s.value >= prev ? s.value - prev : s.value;
          const d = { name: s.name, labels: s.labels, value: inc };
          if (s.name === REQUESTS) requests.push(d);
          else if (s.name === DURATION_BUCKET) durationBuckets.push(d);
          else if (s.name === REQUEST_BYTES_SUM) requestBytes.push(d);
          else if (s.name === RESPONSE_BYTES_SUM) responseBytes.push(d);
        }
      }
    }
    if (!nodes) return null;
    return { seconds: Math.max(spans / nodes, 0.001), requests, durationBuckets, requestBytes, responseBytes, tcpOpened, tcpClosed, source: 'agents', at: new Date(end).toISOString() };
  }
}
