// Fault injection, Istio's HTTPFaultInjection semantics: a delay and an abort, each applied to its own
// percentage of requests, drawn independently (a request may be delayed and then aborted); no percentage
// means no request is affected. An abort with grpcStatus answers gRPC requests with that status (HTTP 200,
// trailers only); an abort with httpStatus answers with that status.
import type { CompiledFault } from '../../common/policy/traffic.js';

export interface FaultDecision {
  delayMs: number;
  abort: { httpStatus?: number; grpcStatus?: number } | undefined;
}

export function decideFault(f: CompiledFault, rand: () => number): FaultDecision | undefined {
  const delay = f.delay && f.delay.percent > 0 && rand() * 100 < f.delay.percent ? f.delay.delayMs : 0;
  const abort = f.abort && f.abort.percent > 0 && rand() * 100 < f.abort.percent ? f.abort : undefined;
  if (delay === 0 && !abort) return undefined;
  return { delayMs: delay, abort: abort ? { ...(abort.httpStatus !== undefined ? { httpStatus: abort.httpStatus } : {}), ...(abort.grpcStatus !== undefined ? { grpcStatus: abort.grpcStatus } : {}) } : undefined };
}
