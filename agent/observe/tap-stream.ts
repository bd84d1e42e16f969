// The agent's end of the tap stream (proto MeshController.Tap). The agent opens it to the controller, as it
// opens the config stream, so taps need no port into the node: the admin API stays on loopback and the
// controller reaches agents only over the channel they authenticated themselves on. The controller sends
// "start tap X with this filter and rate cap" / "stop tap X"; every 100 ms the agent sends each open tap's
// queued events and drop counts. When the stream goes down nobody is reading: every tap stops at once
// (the hot path is back to one boolean) and the stream is opened again with backoff.
import type * as grpc from '@grpc/grpc-js';

import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { filterFromJson, MAX_MAX_RPS } from '../../common/tap.js';
import type { TapBatch } from '../../proto/generated/weft/v1/TapBatch.js';
import type { TapControl__Output } from '../../proto/generated/weft/v1/TapControl.js';
import type { TapHub } from './tap.js';

export const TAP_FLUSH_MS = 100;
/** a stream up this long before it dropped reconnects at the initial backoff again */
const STABLE_MS = 30_000;

export interface TapStreamOptions {
  connection: { tapStream(): grpc.ClientDuplexStream<TapBatch, TapControl__Output> };
  hub: TapHub;
  log: Logger;
  retryInitialMs?: number;
  retryMaxMs?: number;
  flushMs?: number;
}

export class TapStreamClient {
  private stream: grpc.ClientDuplexStream<TapBatch, TapControl__Output> | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private delay: number;
  private stopped = false;
  /** the stream's buffer is full: events wait in the taps' bounded queues (and overflow is counted) */
  private blocked = false;

  constructor(private readonly o: TapStreamOptions) {
    this.delay = o.retryInitialMs ?? 1000;
  }

  start(): void {
    this.open();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.stopFlushing();
    this.o.hub.stopAll();
    this.stream?.cancel();
    this.stream = undefined;
  }

  private open(): void {
    if (this.stopped) return;
    const stream = this.o.connection.tapStream();
    const openedAt = Date.now();
    this.stream = stream;
    this.blocked = false;
    stream.on('data', (c: TapControl__Output) => {
      this.delay = this.o.retryInitialMs ?? 1000;
      this.control(c);
    });
    stream.on('drain', () => {
      this.blocked = false;
    });
    const down = (why: string) => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      this.stopFlushing();
      if (this.o.hub.size) this.o.log.info('tap stream down; open taps stopped', { reason: why, taps: this.o.hub.size });
      this.o.hub.stopAll();
      if (this.stopped) return;
      // a stream is quiet while nobody taps: one that stayed up a while counts as healthy, so backoff starts over
      if (Date.now() - openedAt > STABLE_MS) this.delay = this.o.retryInitialMs ?? 1000;
      const wait = this.delay * (0.8 + Math.random() * 0.4);
      this.o.log.debug('tap stream down; reconnecting', { reason: why, retryInMs: Math.round(wait) });
      this.delay = Math.min(this.delay * 2, this.o.retryMaxMs ?? 30_000);
      this.retryTimer = setTimeout(() => this.open(), wait);
      this.retryTimer.unref?.();
    };
    stream.on('error', (e: Error) => down(e.message));
    stream.on('end', () => down('controller closed the stream'));
  }

  private control(c: TapControl__Output): void {
    const hub = this.o.hub;
    if (c.stop) {
      hub.stop(c.tapId);
      this.o.log.info('tap stopped', { tap: c.tapId, open: hub.size });
      if (!hub.size) this.stopFlushing();
      return;
    }
    try {
      if (!(c.maxRps >= 1 && c.maxRps <= MAX_MAX_RPS)) throw new RangeError(`max_rps ${c.maxRps} is not from 1 to ${MAX_MAX_RPS}`);
      hub.start(c.tapId, filterFromJson(c.filterJson), c.maxRps);
    } catch (e) {
      this.o.log.warn('tap refused', { tap: c.tapId, error: errorMessage(e) });
      return;
    }
    this.o.log.info('tap started', { tap: c.tapId, filter: c.filterJson, maxRps: c.maxRps, open: hub.size });
    this.flushTimer ??= setInterval(() => this.flush(), this.o.flushMs ?? TAP_FLUSH_MS);
    this.flushTimer.unref?.();
  }

  private stopFlushing(): void {
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.flushTimer = undefined;
  }

  /** Sends every tap's queued events and drop counts, unless the stream is still full from last time. */
  flush(): void {
    const stream = this.stream;
    if (!stream || this.blocked) return;
    for (const b of this.o.hub.drain()) {
      const ok = stream.write({ tapId: b.id, eventsJson: b.events.map((e) => JSON.stringify(e)), droppedQueue: b.droppedQueue, droppedRate: b.droppedRate });
      if (!ok) {
        this.blocked = true;
        return;
      }
    }
  }
}
