// The controller's tap broker: the agents' tap streams on one side (each agent keeps one open, proto
// MeshController.Tap), operators' taps on the other (GET /api/v1/tap). Opening a tap sends its filter and
// rate cap to every agent connected here; an agent that connects while the tap is open gets it too;
// closing it (the operator went away) stops it everywhere. Events and drop counts from the agents go to
// the tap's sink as they arrive. Nothing is kept: with no tap open, the streams are idle.
import { randomBytes } from 'node:crypto';

import type { Logger } from '../../common/log.js';
import { TapError, type TapDrops, type TapFilter } from '../../common/tap.js';
import type { TapBatch__Output } from '../../proto/generated/weft/v1/TapBatch.js';
import type { TapControl } from '../../proto/generated/weft/v1/TapControl.js';

/** taps open at once on one controller (each costs every agent a filter check per request) */
export const MAX_OPEN_TAPS = 8;

export interface AgentTapLink {
  readonly node: string;
  send(c: TapControl): void;
}

export interface TapSink {
  event(node: string, eventJson: string): void;
  drops(d: TapDrops): void;
}

interface OpenTap {
  id: string;
  control: TapControl;
  sink: TapSink;
}

export interface TapHandle {
  id: string;
  /** agents the tap was sent to */
  nodes: string[];
  close(): void;
}

export class TapBroker {
  private readonly links = new Set<AgentTapLink>();
  private readonly taps = new Map<string, OpenTap>();

  constructor(private readonly log: Logger) {}

  /** An agent's tap stream is up: it gets every open tap. Returns the function to call when it ends. */
  attach(link: AgentTapLink): () => void {
    this.links.add(link);
    for (const t of this.taps.values()) link.send(t.control);
    return () => void this.links.delete(link);
  }

  /** nodes with a tap stream to this controller */
  nodes(): string[] {
    return [...new Set([...this.links].map((l) => l.node))].sort();
  }

  get open(): number {
    return this.taps.size;
  }

  /** A batch from an agent: its events and drops go to the tap's sink (a batch for a closed tap is dropped). */
  batch(node: string, b: TapBatch__Output): void {
    const t = this.taps.get(b.tapId);
    if (!t) return;
    for (const e of b.eventsJson) t.sink.event(node, e);
    if (b.droppedQueue || b.droppedRate) t.sink.drops({ type: 'drops', node, queue: Number(b.droppedQueue), rate: Number(b.droppedRate), controller: 0 });
  }

  openTap(filter: TapFilter, maxRps: number, sink: TapSink): TapHandle {
    if (this.taps.size >= MAX_OPEN_TAPS) throw new TapError(`${MAX_OPEN_TAPS} taps are open on this controller already; close one (each costs every agent a check per request)`);
    const id = randomBytes(6).toString('hex');
    const control: TapControl = { tapId: id, stop: false, filterJson: JSON.stringify(filter), maxRps };
    this.taps.set(id, { id, control, sink });
    for (const l of this.links) l.send(control);
    this.log.info('tap opened', { tap: id, filter, maxRps, agents: this.nodes() });
    return {
      id,
      nodes: this.nodes(),
      close: () => {
        if (!this.taps.delete(id)) return;
        for (const l of this.links) l.send({ tapId: id, stop: true });
        this.log.info('tap closed', { tap: id });
      },
    };
  }
}
