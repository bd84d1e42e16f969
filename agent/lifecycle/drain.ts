// The agent's SIGTERM, ordered so that no connection capture sends to this node is refused:
//
//  1. A successor is listening (a restart or upgrade: the new agent bound the same ports with
//     SO_REUSEPORT and is ready): close our listeners at once. Connections already queued on them are
//     migrated to the successor's by the kernel (tcp_migrate_req), new ones only reach the successor.
//     Then tell our HTTP clients to go away and let open connections (long TCP streams, WebSockets, gRPC
//     streams) finish until the drain deadline.
//  2. No successor (the node is being drained, the agent removed): keep accepting, because capture keeps
//     steering here; tell clients to go away; once nothing is open (or the deadline is near), hand the
//     node to the fail mode (onLastOut: the kernel heartbeat says "not serving", so from then on
//     connect() applies closed/open), keep accepting a short grace for connections steered just before,
//     then close.
//  While waiting in 2, a successor that appears switches to 1.
import type { Server } from 'node:net';
import type { Logger } from '../../common/log.js';
import { othersListen, readListeners, type ProcListener } from './listeners.js';
import { listenerInode } from './reuseport.js';

export interface DrainTarget {
  servers(): Server[];
  stopAccepting(): void;
  beginDrain(): void;
  finishDrain(timeoutMs: number): Promise<void>;
  readonly connections: { readonly size: number };
}

export interface HandoverDrainOptions {
  /** the proxy ports a successor must listen on (outbound, inbound tunnel) */
  ports: number[];
  deadlineMs: number;
  log: Logger;
  /** a successor took over: stop everything that must not answer for the node any more (operator ports) */
  onHandover?: () => void | Promise<void>;
  /** no successor: the node is about to have no proxy; switch capture to the fail mode */
  onLastOut?: () => void;
  /** accept this long after onLastOut, for connections steered here just before (ms) */
  lastOutGraceMs?: number;
  pollMs?: number;
  /** after closing the listeners, wait this long before trusting the open-connection count (ms) */
  settleMs?: number;
  listeners?: () => ProcListener[];
  now?: () => number;
}

export type DrainOutcome = 'handover' | 'last';

export async function drainForHandover(target: DrainTarget, o: HandoverDrainOptions): Promise<DrainOutcome> {
  const now = o.now ?? Date.now;
  const deadline = now() + o.deadlineMs;
  const ours = new Set(target.servers().map(listenerInode).filter((x): x is number => x !== undefined));
  const successor = () => {
    try {
      return othersListen(o.ports, ours, (o.listeners ?? readListeners)());
    } catch {
      return false;
    }
  };
  const poll = o.pollMs ?? 100;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  target.beginDrain();
  let outcome: DrainOutcome = 'last';
  for (;;) {
    if (successor()) {
      outcome = 'handover';
      break;
    }
    // no successor: leave once nothing is open, or shortly before the deadline (the grace must fit)
    if (target.connections.size === 0 || now() >= deadline - (o.lastOutGraceMs ?? 300)) break;
    await sleep(poll);
  }
  if (outcome === 'handover') {
    target.stopAccepting();
    o.log.info('successor listening: listeners closed (queued connections migrate to it), draining open connections', { open: target.connections.size, deadlineMs: Math.max(0, deadline - now()) });
    await o.onHandover?.();
    // Connections accepted just before the close may not be counted yet (the proxy tracks a connection once
    // it has sniffed its first bytes); give them time to register before "nothing open" ends the drain.
    await sleep(o.settleMs ?? 1000);
  } else {
    o.onLastOut?.();
    o.log.info('no successor: capture handed to the fail mode, closing listeners after a grace', { open: target.connections.size });
    await sleep(o.lastOutGraceMs ?? 300);
    target.stopAccepting();
    await sleep(o.settleMs ?? 1000);
  }
  await target.finishDrain(Math.max(0, deadline - now()));
  return outcome;
}
