// A request body kept for replay: retries (and mirrors) need the bytes again after the first try consumed
// the stream. Only bodies up to 64 KiB are kept (as Envoy's default per-request retry buffer); a larger
// one is never retried or mirrored, its request goes once. Chunks are copied as they stream upstream, so
// the first try is not delayed by buffering.
export const MAX_REPLAY_BODY = 64 * 1024;

export class ReplayBody {
  private chunks: Buffer[] | undefined = [];
  private size = 0;
  private ended = false;

  /** `declaredLength`: Content-Length when given (a larger one is known at once not to fit). */
  constructor(declaredLength: number | undefined, private readonly max = MAX_REPLAY_BODY) {
    if (declaredLength !== undefined && declaredLength > max) this.chunks = undefined;
  }

  add(chunk: Buffer): void {
    if (!this.chunks) return;
    this.size += chunk.length;
    if (this.size > this.max) {
      this.chunks = undefined;
      return;
    }
    this.chunks.push(chunk);
  }

  end(): void {
    this.ended = true;
  }

  /** The whole body is here and small enough to send again. */
  get replayable(): boolean {
    return this.ended && this.chunks !== undefined;
  }

  /** Whether it can still become replayable (not over the limit yet). */
  get fits(): boolean {
    return this.chunks !== undefined;
  }

  bytes(): Buffer {
    if (!this.replayable) throw new Error('body is not replayable');
    if (this.chunks!.length !== 1) this.chunks = [Buffer.concat(this.chunks!)];
    return this.chunks![0]!;
  }
}
