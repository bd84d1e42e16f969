// Retry budget, Linkerd's: retries may add at most `percent` of the requests seen in the last `interval`,
// plus a floor of `minRetriesPerSecond` so a quiet service can still retry. On by default for every
// Service (20%, 10/s, 10 s); a TrafficPolicy `retryBudget` changes it. A retry the budget cannot pay for
// is not made: the failure is returned as it came. One budget per Service, shared by all the pods on the
// node, kept in the pipeline's RuntimeState so it survives config versions.
//
// The window is split in SLOTS buckets so old requests leave it gradually (a sliding window, as Linkerd's
// and Finagle's token buckets decay their deposits), at O(1) per request.
import type { CompiledRetryBudget } from '../../common/policy/traffic.js';

export const DEFAULT_RETRY_BUDGET: CompiledRetryBudget = Object.freeze({ percent: 20, minRetriesPerSecond: 10, intervalMs: 10_000 });

const SLOTS = 10;

export class RetryBudget {
  private readonly requests = new Float64Array(SLOTS);
  private readonly retries = new Float64Array(SLOTS);
  private slot = 0;
  private slotStart: number;
  private cfg: CompiledRetryBudget;

  constructor(cfg: CompiledRetryBudget, private readonly now: () => number = () => performance.now()) {
    this.cfg = cfg;
    this.slotStart = now();
  }

  /** A new config version may change the parameters; the counts stay. */
  configure(cfg: CompiledRetryBudget): void {
    this.cfg = cfg;
  }

  get config(): CompiledRetryBudget {
    return this.cfg;
  }

  private advance(): void {
    const width = this.cfg.intervalMs / SLOTS;
    const t = this.now();
    let steps = Math.floor((t - this.slotStart) / width);
    if (steps <= 0) return;
    if (steps > SLOTS) steps = SLOTS;
    for (let i = 0; i < steps; i++) {
      this.slot = (this.slot + 1) % SLOTS;
      this.requests[this.slot] = 0;
      this.retries[this.slot] = 0;
    }
    this.slotStart = steps === SLOTS ? t : this.slotStart + steps * width;
  }

  /** Every original request (not its retries) deposits. */
  deposit(): void {
    this.advance();
    this.requests[this.slot]! += 1;
  }

  /** Takes one retry from the budget; false when it cannot pay (the retry must not be made). */
  withdraw(): boolean {
    this.advance();
    let req = 0;
    let ret = 0;
    for (let i = 0; i < SLOTS; i++) {
      req += this.requests[i]!;
      ret += this.retries[i]!;
    }
    const allowance = (this.cfg.minRetriesPerSecond * this.cfg.intervalMs) / 1000 + (this.cfg.percent / 100) * req;
    if (ret + 1 > allowance) return false;
    this.retries[this.slot]! += 1;
    return true;
  }
}
