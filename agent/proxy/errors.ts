// Errors the proxy raises on purpose (codes documented in docs/errors.md).
import { WeftError } from '../../common/errors.js';

/** A tunnel peer's certificate was refused: untrusted CA, expired, wrong identity. */
export class TunnelPeerError extends WeftError {
  constructor(
    readonly reason: string,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super('WEFT_ERR_TUNNEL_PEER', message, options);
  }
}

/** The destination could not be reached: no endpoint, connect failure, tunnel refused the stream. */
export class UpstreamError extends WeftError {
  constructor(
    readonly reason: string,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super('WEFT_ERR_UPSTREAM', message, options);
  }
}

/** A proxy listener could not be opened. */
export class ListenError extends WeftError {
  constructor(what: string, address: string, cause: unknown) {
    super('WEFT_ERR_PROXY_LISTEN', `cannot listen for ${what} on ${address}: ${(cause as Error)?.message ?? cause}; is another agent running on this node?`, { cause });
  }
}
