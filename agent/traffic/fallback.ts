// Fallback (Weft's own): when the primary failed after its retries — or could not be tried: no healthy
// endpoint, over a circuit limit — and the failure is one of the policy's `on` conditions, the request goes
// to the fallback Service (when it can be replayed) or is answered with the fixed response. The answer
// carries x-weft-fallback: <ns>/<svc> or "response".
import type { CompiledFallback, FallbackCondition } from '../../common/policy/traffic.js';

/** The final failure of the primary, as the pipeline reports it. */
export interface PrimaryFailure {
  /** HTTP status of the last response; 0 when there was none */
  status: number;
  /** failure before a response (connect_failed, connect_timeout, reset, timeout, ...) */
  error?: string;
  /** no endpoint could be picked (none, or all ejected) */
  noHealthyEndpoint?: boolean;
  /** a circuit-breaking limit refused it */
  overloaded?: boolean;
}

/** The conditions a failure satisfies (a 503 is both 5xx and gateway-error). */
export function conditionsOf(f: PrimaryFailure): FallbackCondition[] {
  const out: FallbackCondition[] = [];
  if (f.noHealthyEndpoint) out.push('no-healthy-endpoint');
  if (f.overloaded) out.push('overloaded');
  if (f.error === 'timeout' || f.error === 'connect_timeout') out.push('timeout');
  if (f.error === 'connect_failed' || f.error === 'connect_timeout' || f.error === 'tunnel_failed') out.push('connect-failure');
  if (f.status >= 500) out.push('5xx');
  if (f.status === 502 || f.status === 503 || f.status === 504) out.push('gateway-error');
  return out;
}

export function shouldFallBack(fb: CompiledFallback, f: PrimaryFailure): boolean {
  if (fb.target.kind === 'service' && !fb.target.resolved) return false;
  for (const c of conditionsOf(f)) if (fb.on.includes(c)) return true;
  return false;
}

export const FALLBACK_HEADER = 'x-weft-fallback';
export const OVERLOADED_HEADER = 'x-weft-overloaded';
