// The pending-request queue of one backend (Istio's connectionPool.http.http1MaxPendingRequests, Envoy's
// max_pending_requests): HTTP/1.1 requests that found every allowed connection (tcp.maxConnections) busy
// wait here, first in first out, for the next one to be released. The queue is bounded by the policy (a
// request that finds it full is refused at once, as without a queue); a request whose client goes away or
// whose timeout fires leaves it (cancel). A released slot is handed to the head directly, inside release(),
// so a newcomer can never take it ahead of the requests already waiting.

/** One waiting request; `grant` is called once, when a released slot is handed to it (after shift()). */
export interface Waiter {
  readonly retry: boolean;
  grant(): void;
}

export class PendingQueue {
  private readonly items: Waiter[] = [];
  /** requests that waited and were then granted a slot, since the agent started (for operators) */
  granted = 0;
  /** requests that left the queue without a slot (client gone, timeout) */
  cancelled = 0;

  get length(): number {
    return this.items.length;
  }

  push(w: Waiter): void {
    this.items.push(w);
  }

  peek(): Waiter | undefined {
    return this.items[0];
  }

  /** Removes the head, which the caller grants a slot to. */
  shift(): Waiter | undefined {
    const w = this.items.shift();
    if (w) this.granted++;
    return w;
  }

  /** Removes a waiter that gives up (its client went away, its timeout fired); false when it was not waiting any more. */
  remove(w: Waiter): boolean {
    const i = this.items.indexOf(w);
    if (i < 0) return false;
    this.items.splice(i, 1);
    this.cancelled++;
    return true;
  }
}
