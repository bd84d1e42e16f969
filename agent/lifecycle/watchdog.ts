// The agent's watchdog: a short timer whose lateness measures how long the event loop was blocked. A
// proxy whose loop stalls for seconds serves nobody; liveness then fails (the kubelet restarts the agent)
// and, because the same tick refreshes the kernel's fail-mode heartbeat (onTick), capture stops steering
// connections to a proxy that cannot take them long before any probe notices.

export interface WatchdogOptions {
  /** how often the watchdog ticks (ms); also the heartbeat period */
  intervalMs?: number;
  /** a tick later than this (ms) counts as a stall */
  stallMs?: number;
  /** liveness fails while a stall happened within this window (ms) */
  windowMs?: number;
  now?: () => number;
}

export interface Stall {
  at: number;
  blockedMs: number;
}

export class LoopWatchdog {
  readonly intervalMs: number;
  readonly stallMs: number;
  readonly windowMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private expected = 0;
  private readonly tickListeners = new Set<(now: number) => void>();
  /** stalls observed since start (counted for weft_agent_event_loop_stalls_total) */
  stalls = 0;
  /** the longest block seen since start, ms */
  maxBlockedMs = 0;
  lastStall: Stall | undefined;

  constructor(o: WatchdogOptions = {}) {
    this.intervalMs = o.intervalMs ?? 250;
    this.stallMs = o.stallMs ?? 3_000;
    this.windowMs = o.windowMs ?? 30_000;
    this.now = o.now ?? Date.now;
  }

  start(): void {
    if (this.timer) return;
    this.expected = this.now() + this.intervalMs;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
    this.emit(this.now());
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** called on every tick (and once at start) with the tick's time; a throwing listener is isolated */
  onTick(listener: (now: number) => void): () => void {
    this.tickListeners.add(listener);
    return () => this.tickListeners.delete(listener);
  }

  /** Exposed for tests: one timer firing. */
  tick(): void {
    const now = this.now();
    const late = now - this.expected;
    this.expected = now + this.intervalMs;
    if (late > this.maxBlockedMs) this.maxBlockedMs = late;
    if (late >= this.stallMs) {
      this.stalls++;
      this.lastStall = { at: now, blockedMs: late };
    }
    this.emit(now);
  }

  /** undefined when live; otherwise why not (for /healthz/live) */
  liveProblem(): string | undefined {
    const s = this.lastStall;
    if (s && this.now() - s.at < this.windowMs) {
      return `event loop blocked for ${Math.round(s.blockedMs)} ms ${Math.round((this.now() - s.at) / 1000)} s ago (stall threshold ${this.stallMs} ms)`;
    }
    return undefined;
  }

  private emit(now: number): void {
    for (const l of this.tickListeners) {
      try {
        l(now);
      } catch {
        // a heartbeat writer that fails must not stop the others; it reports its own failures
      }
    }
  }
}
