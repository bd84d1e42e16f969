// The per-request label values that are not known before the response: response_flags and
// grpc_response_status, computed as Envoy computes them for Istio's metrics. Cheap on purpose: they run
// once per request, and the series lookup compares their results without building a key.

// Envoy's ResponseFlag enum order: %RESPONSE_FLAGS% lists the flags set in this order, each once, whatever
// order they were raised in (a retried connection failure is "UF,URX").
const ENVOY_ORDER: readonly string[] = ['LH', 'UH', 'UT', 'LR', 'UR', 'UF', 'UC', 'UO', 'NR', 'DI', 'FI', 'RL', 'UAEX', 'RLSE', 'DC', 'URX', 'SI', 'IH', 'DPE'];
const rank = (f: string) => {
  const i = ENVOY_ORDER.indexOf(f);
  return i < 0 ? ENVOY_ORDER.length : i;
};

/** Envoy's %RESPONSE_FLAGS%: "-" when none, else the distinct flags in Envoy's order, comma-joined. */
export function flagsLabel(flags: readonly string[]): string {
  const n = flags.length;
  if (n === 0) return '-';
  if (n === 1) return flags[0]!;
  return [...new Set(flags)].sort((a, b) => rank(a) - rank(b)).join(',');
}

/** No gRPC status (not a gRPC request, or no response at all): grpc_response_status is empty. */
export const NO_GRPC_STATUS = -1;

/**
 * grpc_response_status for one request: the grpc-status the server sent (trailers, or headers of a
 * trailers-only response), else inferred from the HTTP status as Envoy's Grpc::Utility::httpToGrpcStatus
 * does (a 503 from the mesh is UNAVAILABLE to a gRPC client); empty for non-gRPC requests.
 */
export function grpcStatusOf(isGrpc: boolean, grpcStatus: number | undefined, httpStatus: number): number {
  if (!isGrpc || httpStatus <= 0) return NO_GRPC_STATUS;
  if (grpcStatus !== undefined) return grpcStatus;
  switch (httpStatus) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}
