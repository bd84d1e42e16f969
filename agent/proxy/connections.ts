// Open connections, for the admin page and the active-connections gauge; and the count a graceful drain
// waits on.
import type { AgentMetrics } from '../metrics/agent-health.js';

export type Direction = 'outbound' | 'inbound';

export interface ConnectionInfo {
  id: number;
  direction: Direction;
  since: string;
  [k: string]: unknown;
}

export class ConnectionTracker {
  private nextId = 1;
  private readonly open = new Map<number, ConnectionInfo>();
  private readonly killers = new Map<number, () => void>();
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly metrics?: AgentMetrics) {}

  /** Registers a connection; call the returned function once when it closes. */
  track(direction: Direction, fields: Record<string, unknown>, destroy?: () => void): () => void {
    const id = this.nextId++;
    this.open.set(id, { ...fields, id, direction, since: new Date().toISOString() });
    if (destroy) this.killers.set(id, destroy);
    this.metrics?.activeConnections.inc({ direction });
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.open.delete(id);
      this.killers.delete(id);
      this.metrics?.activeConnections.dec({ direction });
      if (this.open.size === 0) {
        const w = this.idleWaiters;
        this.idleWaiters = [];
        for (const f of w) f();
      }
    };
  }

  get size(): number {
    return this.open.size;
  }

  list(): ConnectionInfo[] {
    return [...this.open.values()];
  }

  /** Closes every connection still open (end of a drain, or shutdown). */
  destroyAll(): void {
    for (const k of [...this.killers.values()]) k();
  }

  /** Resolves when no connection is open (immediately if none is). */
  idle(): Promise<void> {
    if (this.open.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }
}
