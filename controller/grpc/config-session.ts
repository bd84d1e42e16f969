// One agent's config stream. The controller keeps at most one update in flight per agent: it sends a
// snapshot first, then, after each ACK or NACK, a delta from the last version the agent ACKed to the newest
// config. Changes that arrive while an update is in flight are coalesced into the next one. A NACK leaves
// the agent on its last good version (it said so) and is recorded for operators.
import type * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';

import type { Logger } from '../../common/log.js';
import type { MeshConfig } from '../../common/mesh.js';
import { deltaUpdate, snapshotUpdate } from '../../proto/delta.js';
import type { ConfigRequest__Output } from '../../proto/generated/weft/v1/ConfigRequest.js';
import type { ConfigUpdate } from '../../proto/generated/weft/v1/ConfigUpdate.js';
import type { AgentRegistry, AgentReport } from '../agents/registry.js';

export interface ConfigSource {
  configFor(node: string): MeshConfig;
  trustBundlePem(): string;
}

/**
 * Updates shared by sessions: agents at the same ACKed version get the same delta to the same config, so
 * it is computed (and encoded by gRPC from the same object) once, not once per agent.
 */
const digest = (s: string) => createHash('sha256').update(s).digest('base64url').slice(0, 16);

export class UpdateCache {
  private readonly entries = new Map<string, ConfigUpdate | undefined>();

  get(base: Sent | undefined, next: MeshConfig, bundle: string): ConfigUpdate | undefined {
    const key = `${base ? `${base.config.version}:${digest(base.bundle)}` : 'snapshot'}->${next.version}:${digest(bundle)}`;
    if (this.entries.has(key)) return this.entries.get(key);
    const u = base ? deltaUpdate(base.config, next, bundle, base.bundle) : snapshotUpdate(next, bundle);
    if (this.entries.size >= 64) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, u);
    return u;
  }
}

export interface Sent {
  config: MeshConfig;
  bundle: string;
}

export class ConfigSession {
  private acked: Sent | undefined;
  private inflight: Sent | undefined;
  private subscribed = false;
  private closed = false;
  private lastNack: { version: number; reason: string } | undefined;

  constructor(
    readonly node: string,
    private readonly call: grpc.ServerDuplexStream<ConfigRequest__Output, ConfigUpdate>,
    private readonly source: ConfigSource,
    private readonly registry: AgentRegistry,
    private readonly log: Logger,
    private readonly cache: UpdateCache = new UpdateCache(),
  ) {}

  onRequest(req: ConfigRequest__Output): void {
    if (req.subscribe) {
      this.subscribed = true;
      this.log.info('agent subscribed', { node: this.node, haveVersion: req.subscribe.haveVersion });
      this.pump();
      return;
    }
    if (req.ack) {
      const { version, accepted, error } = req.ack;
      if (!this.inflight || this.inflight.config.version !== version) {
        this.log.warn('ACK for a version not in flight', { node: this.node, version, inflight: this.inflight?.config.version });
        return;
      }
      if (accepted) {
        this.acked = this.inflight;
        this.lastNack = undefined;
        this.log.debug('agent ACKed', { node: this.node, version });
      } else {
        this.lastNack = { version, reason: error || 'no reason given' };
        this.log.warn('agent NACKed config', { node: this.node, version, reason: this.lastNack.reason, keeps: this.acked?.config.version });
      }
      this.inflight = undefined;
      this.recordAckState(version);
      this.pump();
    }
  }

  /** the newest config or trust bundle changed */
  changed(): void {
    this.pump();
  }

  close(): void {
    this.closed = true;
  }

  ackedVersion(): number | undefined {
    return this.acked?.config.version;
  }

  private pump(): void {
    if (this.closed || !this.subscribed || this.inflight) return;
    const config = this.source.configFor(this.node);
    const bundle = this.source.trustBundlePem();
    if (this.lastNack && this.lastNack.version === config.version) return; // the same config would be NACKed again
    if (this.acked && this.acked.config.version === config.version && this.acked.bundle === bundle) return;
    const update = this.cache.get(this.acked, config, bundle);
    // nothing the agent can see changed: no round trip (the next delta is still based on what it ACKed)
    if (!update) return;
    this.inflight = { config, bundle };
    this.call.write(update);
    this.log.debug('sent config', { node: this.node, version: config.version, snapshot: update.snapshot });
  }

  private recordAckState(version: number): void {
    const prev = this.registry.get(this.node)?.lastReport;
    const report: AgentReport = {
      ...(prev ?? {
        healthy: true,
        counters: { requests: 0, requestErrors: 0, connectionsOpened: 0, connectionsActive: 0, redirects: 0, cpuPercent: 0, memoryRssBytes: 0 },
      }),
      node: this.node,
      configVersion: this.acked?.config.version ?? 0,
      lastSentVersion: version,
      ack: this.lastNack ? 'NACK' : 'ACK',
      reportedAt: prev?.reportedAt ?? new Date().toISOString(),
    };
    if (this.lastNack) report.nackReason = this.lastNack.reason;
    else delete report.nackReason;
    this.registry.report(report);
  }
}
