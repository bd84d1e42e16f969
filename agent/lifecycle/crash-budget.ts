// Uncaught exceptions and unhandled rejections: one is a bug to log and survive (one connection's bug must
// not take the node's traffic down), but several within a short window mean the process is in a state
// nobody reasoned about. Then liveness fails and the kubelet (or the sandbox supervisor) restarts the agent,
// which a hitless restart makes cheap.
import type { Logger } from '../../common/log.js';

export interface CrashBudgetOptions {
  /** this many within windowMs make the agent not live */
  max?: number;
  windowMs?: number;
  now?: () => number;
}

export class CrashBudget {
  readonly max: number;
  readonly windowMs: number;
  private readonly now: () => number;
  private recent: number[] = [];
  /** since start, by kind (weft_agent_uncaught_errors_total) */
  readonly total = { exception: 0, rejection: 0 };

  constructor(o: CrashBudgetOptions = {}) {
    this.max = o.max ?? 5;
    this.windowMs = o.windowMs ?? 60_000;
    this.now = o.now ?? Date.now;
  }

  record(kind: 'exception' | 'rejection'): void {
    this.total[kind]++;
    const now = this.now();
    this.recent = this.recent.filter((t) => now - t < this.windowMs);
    this.recent.push(now);
  }

  /** undefined when within budget; otherwise why the agent is not live */
  liveProblem(): string | undefined {
    const now = this.now();
    const n = this.recent.filter((t) => now - t < this.windowMs).length;
    if (n >= this.max) return `${n} uncaught exceptions/rejections within ${this.windowMs / 1000} s (budget ${this.max - 1}); the process state is suspect, restart it`;
    return undefined;
  }

  /** Installs the process-wide handlers: log, count, keep serving. Returns the uninstaller. */
  install(log: Logger): () => void {
    const onException = (err: Error) => {
      this.record('exception');
      log.error('uncaught exception (bug): kept running', { error: err, stack: err?.stack, recent: this.recent.length, budget: this.max });
    };
    const onRejection = (err: unknown) => {
      this.record('rejection');
      log.error('unhandled rejection (bug): kept running', { error: err, recent: this.recent.length, budget: this.max });
    };
    process.on('uncaughtException', onException);
    process.on('unhandledRejection', onRejection);
    return () => {
      process.off('uncaughtException', onException);
      process.off('unhandledRejection', onRejection);
    };
  }
}
