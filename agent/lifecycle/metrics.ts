// The lifecycle's own health under weft_agent_*: event loop stalls and the longest block, uncaught errors.
// Read at scrape time from the watchdog and the crash budget (no per-event metric calls).
import { Counter, Gauge, type Registry } from 'prom-client';
import type { CrashBudget } from './crash-budget.js';
import type { LoopWatchdog } from './watchdog.js';

export function registerLifecycleMetrics(registry: Registry, src: { watchdog: LoopWatchdog; crashes: CrashBudget }): void {
  const registers = [registry];
  new Counter({
    name: 'weft_agent_event_loop_stalls_total',
    help: 'Times the agent event loop was blocked longer than the watchdog stall threshold',
    registers,
    collect() {
      this.reset();
      this.inc(src.watchdog.stalls);
    },
  });
  new Gauge({
    name: 'weft_agent_event_loop_max_block_seconds',
    help: 'Longest event loop block the watchdog measured since the agent started',
    registers,
    collect() {
      this.set(src.watchdog.maxBlockedMs / 1000);
    },
  });
  new Counter({
    name: 'weft_agent_uncaught_errors_total',
    help: 'Uncaught exceptions and unhandled rejections the agent survived, by kind',
    labelNames: ['kind'],
    registers,
    collect() {
      this.reset();
      this.inc({ kind: 'exception' }, src.crashes.total.exception);
      this.inc({ kind: 'rejection' }, src.crashes.total.rejection);
    },
  });
}
