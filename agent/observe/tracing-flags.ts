// The agent's tracing flags (--trace-collector, --trace-sampling), validated on their own so `weft sandbox
// up` checks them as the agents will without loading the agent.
import { WeftConfigError } from '../../common/errors.js';

export interface TracingFlags {
  /** the collector's OTLP/HTTP traces URL, e.g. http://otel-collector.observability:4318/v1/traces */
  collector: string;
  /** share of requests whose caller did not decide that are sampled, 0..1 (the flag is in percent) */
  sampling: number;
}

/** Istio's default sampling rate (meshConfig.defaultConfig.tracing.sampling: 1.0 percent) */
export const DEFAULT_TRACE_SAMPLING_PERCENT = 1;

/** --trace-collector / --trace-sampling; a sampling rate with nowhere to send spans would do nothing: refused. */
export function tracingFlags(collector: string | undefined, sampling: string | undefined): TracingFlags | undefined {
  if (collector === undefined) {
    if (sampling !== undefined) throw new WeftConfigError('--trace-sampling', 'has no effect without --trace-collector (where spans are exported)');
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(collector);
  } catch {
    throw new WeftConfigError('--trace-collector', `"${collector}" is not a URL (the collector's OTLP/HTTP traces endpoint, e.g. http://otel-collector:4318/v1/traces)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new WeftConfigError('--trace-collector', `"${collector}": OTLP/HTTP needs an http:// or https:// URL`);
  const pct = sampling === undefined ? DEFAULT_TRACE_SAMPLING_PERCENT : Number(sampling);
  if (!(pct >= 0 && pct <= 100) || sampling?.trim() === '') throw new WeftConfigError('--trace-sampling', `"${sampling}" is not a percentage between 0 and 100`);
  return { collector: url.href, sampling: pct / 100 };
}
