// Resetting an HTTP/2 stream whose response is under way. Node's Http2Stream.close(code) first ends the
// writable side (a DATA frame with END_STREAM) and only then sends RST_STREAM, which the peer then ignores:
// the client sees a complete response where there is a cut one. So a stream whose response was cut (an
// upstream reset mid-response, a policy that now denies it) is reset through the native handle, with no
// END_STREAM before it; Node's own close() is the fallback if its internals ever change (we pin Node 24).
import type { Http2Stream } from 'node:http2';

let handleKey: symbol | undefined | null;

export function resetStream(stream: Http2Stream, code: number): void {
  if (stream.destroyed || stream.closed) return;
  if (handleKey === undefined) handleKey = Object.getOwnPropertySymbols(stream).find((s) => s.description === 'kHandle') ?? null;
  const handle = handleKey ? (stream as unknown as Record<symbol, { rstStream?: (code: number) => void } | undefined>)[handleKey] : undefined;
  if (typeof handle?.rstStream === 'function') handle.rstStream(code);
  else stream.close(code);
}
