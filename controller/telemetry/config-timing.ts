// Where the time of a config change goes on the controller's side, as histograms on its /metrics (15014):
// waiting to be translated (the publisher's debounce), translating, and from the send to each agent's answer
// (network plus the agent's receive and apply; the agent's own split is weft_config_apply_seconds). The
// propagation histogram is the whole path the controller sees: from the oldest store change in a delta to
// the agent's ACK. bench/config-propagation.ts reads these next to what a client in a pod observes.
import { Histogram, type Registry } from 'prom-client';

import { CONFIG_SECONDS_BUCKETS } from '../../common/config-timing.js';
import type { Logger } from '../../common/log.js';
import type { ConfigAnswer } from '../grpc/config-session.js';
import type { PublishedVersion } from '../translate/publisher.js';

export class ConfigTimingMetrics {
  private readonly wait: Histogram;
  private readonly build: Histogram;
  private readonly roundtrip: Histogram<'kind' | 'result'>;
  private readonly propagation: Histogram<'result'>;

  constructor(
    registry: Registry,
    private readonly log?: Logger,
  ) {
    const registers = [registry];
    const buckets = CONFIG_SECONDS_BUCKETS;
    this.wait = new Histogram({ name: 'weft_controller_config_wait_seconds', help: 'From the first store change in a config version to the start of its translation (debounce)', buckets, registers });
    this.build = new Histogram({ name: 'weft_controller_config_build_seconds', help: 'Translation of one config version', buckets, registers });
    this.roundtrip = new Histogram({
      name: 'weft_controller_config_roundtrip_seconds',
      help: 'From sending an update to an agent to its ACK or NACK, by kind (snapshot, delta) and result (ack, nack)',
      labelNames: ['kind', 'result'],
      buckets,
      registers,
    });
    this.propagation = new Histogram({
      name: 'weft_controller_config_propagation_seconds',
      help: 'From the oldest store change in a delta to the agent\'s answer, per agent, by result (ack, nack)',
      labelNames: ['result'],
      buckets,
      registers,
    });
  }

  version(v: PublishedVersion): void {
    this.wait.observe(v.waitMs / 1000);
    this.build.observe(v.buildMs / 1000);
  }

  answered(a: ConfigAnswer): void {
    const result = a.accepted ? 'ack' : 'nack';
    this.roundtrip.observe({ kind: a.snapshot ? 'snapshot' : 'delta', result }, a.roundtripMs / 1000);
    if (a.propagationMs !== undefined) this.propagation.observe({ result }, a.propagationMs / 1000);
    this.log?.debug('config answer timed', { node: a.node, version: a.version, result, snapshot: a.snapshot, roundtripMs: round(a.roundtripMs), ...(a.propagationMs !== undefined ? { propagationMs: round(a.propagationMs) } : {}) });
  }
}

const round = (ms: number) => Math.round(ms * 10) / 10;
