// Local rate limiting (Weft's rateLimit): a token bucket per destination pod (and per perPrincipal entry),
// enforced by the destination pod's node proxy, so callers on every node draw from the same bucket. The
// bucket holds max(burst, 1) tokens and refills at requestsPerSecond; it starts full. Over any window of T
// seconds at most requestsPerSecond × T + max(burst, 1) requests pass. A refused request is answered 429
// with retry-after (whole seconds until a token is back), gRPC status 8 RESOURCE_EXHAUSTED.
import type { CompiledRateLimit, CompiledRateLimitBucket } from '../../common/policy/traffic.js';

export class TokenBucket {
  private tokens: number;
  private at: number;
  /** refused requests by caller principal ("unknown" outside the mesh), for metrics and the admin page */
  readonly rejected = new Map<string, number>();
  allowed = 0;
  /** the destination pod's "ip:port" the bucket guards, so operators see rejections next to that endpoint */
  endpoint = '';

  constructor(
    private rate: number,
    private capacity: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.at = now;
  }

  /** A policy change keeps the tokens (clamped), so a new config version does not refill the bucket. */
  reconfigure(rate: number, capacity: number): void {
    this.rate = rate;
    this.capacity = capacity;
    if (this.tokens > capacity) this.tokens = capacity;
  }

  /** Takes one token: 0 when allowed, else the ms until one is available. */
  take(now: number): number {
    const elapsed = now - this.at;
    if (elapsed > 0) {
      this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.rate) / 1000);
      this.at = now;
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.allowed++;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) * 1000) / this.rate);
  }

  count(principal: string): void {
    this.rejected.set(principal, (this.rejected.get(principal) ?? 0) + 1);
  }

  get available(): number {
    return this.tokens;
  }
}

export function capacityOf(b: CompiledRateLimitBucket): number {
  return Math.max(b.burst, 1);
}

/** The bucket settings that apply to a caller: its perPrincipal entry (index), or the default (-1). */
export function bucketFor(rl: CompiledRateLimit, principal: string | undefined): { index: number; bucket: CompiledRateLimitBucket } {
  if (principal) {
    for (let i = 0; i < rl.perPrincipal.length; i++) if (rl.perPrincipal[i]!.principals.includes(principal)) return { index: i, bucket: rl.perPrincipal[i]! };
  }
  return { index: -1, bucket: rl };
}

/** retry-after in whole seconds (RFC 9110 §10.2.3), at least 1. */
export function retryAfterSeconds(waitMs: number): number {
  return Math.max(1, Math.ceil(waitMs / 1000));
}
