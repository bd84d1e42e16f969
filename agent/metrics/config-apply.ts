// How long this agent takes to put a config update from the controller in force, by step, as
// weft_config_apply_seconds{step}: receive (first chunk to last, including waiting behind an earlier update),
// merge (the delta onto the config held), capture (the eBPF maps), rebuild (indexes, pipeline stages,
// authorization re-evaluation of open connections), apply (capture + rebuild + identities) and total (first
// chunk to the ACK or NACK written). Updates are counted by kind and result.
import { Counter, Histogram, type Registry } from 'prom-client';

import { CONFIG_SECONDS_BUCKETS } from '../../common/config-timing.js';
import type { ConfigApplyTiming } from '../config/client.js';

export type ApplyStep = 'receive' | 'merge' | 'capture' | 'rebuild' | 'apply' | 'total';

export class ConfigApplyMetrics {
  private readonly seconds: Histogram<'step'>;
  private readonly updates: Counter<'kind' | 'result'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.seconds = new Histogram({ name: 'weft_config_apply_seconds', help: 'Putting one config update from the controller in force, by step', labelNames: ['step'], buckets: CONFIG_SECONDS_BUCKETS, registers });
    this.updates = new Counter({ name: 'weft_config_updates_total', help: 'Config updates from the controller, by kind (snapshot, delta) and result (ack, nack)', labelNames: ['kind', 'result'], registers });
  }

  /** one step of the apply callback, timed by the caller */
  step(step: Extract<ApplyStep, 'capture' | 'rebuild'>, ms: number): void {
    this.seconds.observe({ step }, ms / 1000);
  }

  /** the client's timing of a whole update (ConfigClientOptions.timed) */
  update(t: ConfigApplyTiming): void {
    this.updates.inc({ kind: t.snapshot ? 'snapshot' : 'delta', result: t.accepted ? 'ack' : 'nack' });
    this.seconds.observe({ step: 'receive' }, t.receiveMs / 1000);
    this.seconds.observe({ step: 'merge' }, t.mergeMs / 1000);
    this.seconds.observe({ step: 'apply' }, t.applyMs / 1000);
    this.seconds.observe({ step: 'total' }, t.totalMs / 1000);
  }
}
