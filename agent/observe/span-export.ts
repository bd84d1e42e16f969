// Where finished spans go: a bounded queue, exported in batches over OTLP/HTTP (protobuf) by the
// OpenTelemetry SDK's exporter. The SDK's own BatchSpanProcessor does the same but keeps the number of spans
// it dropped to itself (a debug log line), and operators must see drops: this processor counts every span
// exported, dropped because the queue was full, or lost because the collector refused or was unreachable
// (weft_tracing_spans_total{result}). onEnd is a bounds check and a push: a slow or dead collector never
// holds a request, it only makes the queue drop.
import type { ExportResult } from '@opentelemetry/core';
import type { Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';
import { Counter, Gauge, type Registry } from 'prom-client';

export interface ExportLimits {
  /** spans held at most; past it new spans are dropped (counted) */
  maxQueue: number;
  /** spans per OTLP request */
  maxBatch: number;
  /** a partial batch waits at most this long */
  delayMs: number;
}

export const DEFAULT_EXPORT_LIMITS: ExportLimits = { maxQueue: 2048, maxBatch: 512, delayMs: 1000 };

export type SpanResult = 'exported' | 'dropped_queue_full' | 'dropped_export_failed';

export class SpanExportMetrics {
  readonly spans: Counter<'result'>;
  readonly queued: Gauge;

  constructor(registry: Registry, queued: () => number) {
    this.spans = new Counter({
      name: 'weft_tracing_spans_total',
      help: 'Spans recorded by the node proxy, by what became of them: exported (the collector accepted them), dropped_queue_full (the export queue was full), dropped_export_failed (the collector refused or was unreachable)',
      labelNames: ['result'],
      registers: [registry],
    });
    this.queued = new Gauge({
      name: 'weft_tracing_export_queue_spans',
      help: 'Spans waiting in the export queue',
      registers: [registry],
      collect() {
        this.set(queued());
      },
    });
  }
}

export class BoundedBatchProcessor implements SpanProcessor {
  private queue: ReadableSpan[] = [];
  private timer: NodeJS.Timeout | undefined;
  private exporting: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly exporter: SpanExporter,
    private readonly limits: ExportLimits,
    private readonly count: (result: SpanResult, n: number) => void,
  ) {}

  onStart(_span: Span, _parent: Context): void {}

  onEnd(span: ReadableSpan): void {
    if (this.closed || this.queue.length >= this.limits.maxQueue) return this.count('dropped_queue_full', 1);
    this.queue.push(span);
    if (this.queue.length >= this.limits.maxBatch) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), this.limits.delayMs).unref();
  }

  /** spans waiting for export */
  get queued(): number {
    return this.queue.length;
  }

  private kick(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    // one export at a time: the next batch goes when this one is answered
    if (this.exporting || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.limits.maxBatch);
    let resolve!: () => void;
    const exporting = (this.exporting = new Promise<void>((r) => (resolve = r)));
    // an exporter may answer synchronously (inside export()): the state is set before it is called
    const done = (r: ExportResult) => {
      this.count(r.code === 0 ? 'exported' : 'dropped_export_failed', batch.length);
      if (this.exporting === exporting) this.exporting = undefined;
      resolve();
      if (this.queue.length >= this.limits.maxBatch) this.kick();
      else if (this.queue.length > 0) this.timer ??= setTimeout(() => this.kick(), this.limits.delayMs).unref();
    };
    try {
      this.exporter.export(batch, done);
    } catch {
      done({ code: 1 });
    }
  }

  async forceFlush(): Promise<void> {
    while (this.queue.length > 0 || this.exporting) {
      if (this.exporting) await this.exporting;
      else this.kick();
    }
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
    this.closed = true;
    clearTimeout(this.timer);
    await this.exporter.shutdown();
  }
}
