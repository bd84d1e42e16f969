// The agent's tracing as the flags ask for it: ProxyTracing exporting over OTLP/HTTP with protobuf bodies
// (the OpenTelemetry SDK's exporter) to --trace-collector, its span counts under weft_tracing_*. Loaded by
// the agent only when tracing is on, so an agent without it never loads the SDK.
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { Registry } from 'prom-client';
import type { TracingFlags } from './tracing-flags.js';
import type { MeshState } from '../state/mesh-state.js';
import { SpanExportMetrics } from './span-export.js';
import { ProxyTracing } from './tracing.js';

export function otlpTracing(flags: TracingFlags, state: MeshState, registry: Registry): ProxyTracing {
  let tracing: ProxyTracing | undefined;
  const metrics = new SpanExportMetrics(registry, () => tracing?.processor.queued ?? 0);
  tracing = new ProxyTracing({
    state,
    sampling: flags.sampling,
    // a collector that does not answer in 10 s loses that batch (counted), the queue goes on filling meanwhile
    exporter: new OTLPTraceExporter({ url: flags.collector, timeoutMillis: 10_000 }),
    count: (result, n) => metrics.spans.inc({ result }, n),
  });
  return tracing;
}
