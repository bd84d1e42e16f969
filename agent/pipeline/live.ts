// Live policy: every connection and in-flight HTTP/2 stream or HTTP request admitted on the destination
// side is registered here with the context that admitted it (ztunnel's connection_manager). When a new
// config version arrives, each one is evaluated again by the new Authorizer, and what is now denied is
// closed, with a log line naming the deciding policy.
import type { Logger } from '../../common/log.js';
import type { ConnectionContext, RequestContext } from './context.js';
import type { Authorizer } from './stages.js';

export interface LiveEntry {
  readonly ctx: ConnectionContext | RequestContext;
  /** closes the connection (reset) or the stream (RST_STREAM) / request; `policy` named for the log */
  close(policy: string | undefined): void;
}

export class LiveRegistry {
  private readonly entries = new Set<LiveEntry>();

  /** Registers an admitted connection or request; call the returned function when it ends. */
  add(entry: LiveEntry): () => void {
    this.entries.add(entry);
    return () => void this.entries.delete(entry);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Evaluates every entry with `authz`; closes and forgets the denied ones. Returns how many were closed. */
  reevaluate(authz: Authorizer, log: Logger): number {
    let closed = 0;
    for (const e of [...this.entries]) {
      const c = e.ctx;
      const isRequest = 'method' in c;
      let decision;
      try {
        decision = authz.reevaluate ? authz.reevaluate(c) : isRequest ? authz.request(c) : authz.connection(c);
      } catch (err) {
        log.error('authorizer failed re-evaluating an open connection; left open', { error: err });
        continue;
      }
      if (decision.allow) continue;
      this.entries.delete(e);
      closed++;
      const conn = isRequest ? c.connection : c;
      log.info(isRequest ? 'open request closed: now denied by policy' : 'open connection closed: now denied by policy', {
        policy: decision.policy ?? null,
        source: conn.source.principal ?? conn.source.ip,
        destination: `${conn.destination?.namespace ?? ''}/${conn.destination?.name ?? conn.original.ip}:${isRequest ? c.destinationPort : conn.destinationPort}`,
        ...(isRequest ? { method: c.method, path: c.path } : { protocol: conn.protocol }),
      });
      try {
        e.close(decision.policy);
      } catch (err) {
        log.warn('closing a denied connection failed', { error: err });
      }
    }
    return closed;
  }
}
