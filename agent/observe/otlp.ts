// The agent's tracing as the flags ask for it: ProxyTracing exporting over OTLP/HTTP with protobuf bodies
// (the OpenTelemetry SDK's exporter) to --trace-collector, its span counts under weft_tracing_*. Loaded by
// the agent only when tracing is on, so an agent without it never loads the SDK.
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { Registry } from 'prom-client';
import type { Logger } from '../../common/log.js';
import type { TracingFlags } from './tracing-flags.js';
import type { MeshState } from '../state/mesh-state.js';
import { SpanExportMetrics } from './span-export.js';
import { ProxyTracing } from './tracing.js';

/** Lost spans are logged at most this often (the counter has every one). */
const WARN_EVERY_MS = 30_000;

export function otlpTracing(flags: TracingFlags, state: MeshState, registry: Registry, log: Logger): ProxyTracing {
  let tracing: ProxyTracing | undefined;
  let lastWarn = 0;
  let lost = 0;
  const metrics = new SpanExportMetrics(registry, () => tracing?.processor.queued ?? 0);
  tracing = new ProxyTracing({
    state,
    sampling: flags.sampling,
    // a collector that does not answer in 10 s loses that batch (counted), the queue goes on filling meanwhile
    exporter: new OTLPTraceExporter({ url: flags.collector, timeoutMillis: 10_000 }),
    count: (result, n) => {
      metrics.spans.inc({ result }, n);
      if (result === 'exported') return;
      lost += n;
      const now = Date.now();
      if (now - lastWarn < WARN_EVERY_MS) return;
      lastWarn = now;
      log.warn('spans lost: the trace collector refused them or did not answer, or the export queue was full', { collector: flags.collector, spans: lost, reason: result });
      lost = 0;
    },
  });
  return tracing;
}
