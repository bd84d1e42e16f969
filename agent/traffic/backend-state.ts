// Runtime state of one backend ("<ns>/<svc>:<port>") on this node, shared by every pod calling it and kept
// across config versions (the pipeline's RuntimeState holds it under a stable key): per-endpoint state,
// the round-robin cursor, the consistent-hash table of the current healthy set, circuit counters and
// outlier detection's sweep clock. Endpoints that leave the Service are dropped a while after they left
// (so a brief flap does not forgive an ejection).
import { EndpointState } from './endpoint-state.js';
import type { MaglevTable } from './maglev.js';
import { PendingQueue } from './pending.js';
import type { CompiledConnectionPool } from '../../common/policy/traffic.js';
import type { UpstreamLimits } from '../pipeline/stages.js';

const FORGET_AFTER_MS = 5 * 60_000;

export class BackendState {
  readonly endpoints = new Map<string, EndpointState>();
  /** round-robin cursor: survives versions, so a config change does not send the next request to the first endpoint */
  rr = 0;
  /** consistent-hash table and the healthy set it was built for */
  maglev: { key: string; table: MaglevTable } | undefined;
  /** bumped whenever an endpoint is ejected or returns, so cached tables know the healthy set changed */
  epoch = 0;

  // circuit breaking, this node towards the whole backend
  activeRequests = 0;
  activeConnections = 0;
  activeRetries = 0;
  overloaded = 0;
  /** HTTP/1.1 requests waiting for a connection slot (http1MaxPendingRequests), oldest first */
  readonly pending = new PendingQueue();
  /** the connection pool of the config version that last asked for a slot: the limits the queue is drained under */
  pool: CompiledConnectionPool | undefined;
  /** and the connection settings of that version, for the slots the queue hands out */
  upstream: UpstreamLimits | undefined;
  /** outlier detection: the next interval sweep (performance.now()), 0 before the first */
  nextSweep = 0;
  /** fallbacks taken, by target ("<ns>/<svc>" or "response") */
  readonly fallbacks = new Map<string, number>();
  lastPruned = 0;

  constructor(readonly key: string) {}

  endpoint(id: string): EndpointState {
    let s = this.endpoints.get(id);
    if (!s) this.endpoints.set(id, (s = new EndpointState(id)));
    return s;
  }

  ejectedCount(): number {
    let n = 0;
    for (const s of this.endpoints.values()) if (s.ejected) n++;
    return n;
  }

  /** Drops the state of endpoints that are no longer in the backend and unused for FORGET_AFTER_MS. */
  prune(current: ReadonlySet<string>, now: number): void {
    if (now - this.lastPruned < 10_000) return;
    this.lastPruned = now;
    for (const [id, s] of this.endpoints) {
      if (!current.has(id) && s.outstanding === 0 && now - s.lastUsedMs > FORGET_AFTER_MS) {
        if (s.ejected) this.epoch++;
        this.endpoints.delete(id);
      }
    }
  }
}
