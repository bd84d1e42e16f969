// One agent's config stream. The controller keeps at most one update in flight per agent: a snapshot first
// (on every (re)connect), then, after each ACK or NACK, a delta from the last version the agent ACKed to
// the newest version. Changes that arrive while an update is in flight are coalesced into the next one. A
// NACK leaves the agent on its last good version (it said so) and is recorded for operators. Each answer
// is timed (ConfigAnswer): from the send, and for deltas from the oldest change the agent had not seen.
//
// Updates are pre-encoded and shared between agents (update-encoder.ts) and written chunk by chunk, each
// after the previous one has been taken by the HTTP/2 stream (its flow-control window), so one slow agent
// holds only its own stream and pings keep flowing on every connection.
import type * as grpc from '@grpc/grpc-js';

import type { Logger } from '../../common/log.js';
import type { ConfigRequest__Output } from '../../proto/generated/weft/v1/ConfigRequest.js';
import type { ConfigUpdate } from '../../proto/generated/weft/v1/ConfigUpdate.js';
import type { AgentRegistry, AgentReport } from '../agents/registry.js';
import type { EncodedUpdate, UpdateEncoder } from './update-encoder.js';

/** one agent's answer to one update, timed (controller/telemetry/config-timing.ts records it) */
export interface ConfigAnswer {
  node: string;
  version: number;
  snapshot: boolean;
  accepted: boolean;
  /** from the first chunk's write to the answer: the network and the agent's receive and apply */
  roundtripMs: number;
  /** deltas: from the oldest store change the update carried to the answer */
  propagationMs?: number;
}

export interface ConfigSource {
  encoder: UpdateEncoder;
  version(): number;
  /** ms since the oldest change an agent at `version` has not seen reached the store (publisher.ts) */
  pendingAgeMs?(version: number): number | undefined;
  /** told of every ACK and NACK */
  answered?(a: ConfigAnswer): void;
  /** the agent holds `version` (from another replica): number this replica's newest version above it */
  raiseAbove(version: number): void;
  trustBundlePem(): string;
}

interface Sent {
  version: number;
  bundle: string;
  snapshot?: boolean;
  /** performance.now() when the first chunk was written */
  sentAt?: number;
  /** the oldest unseen change's age at the send, ms (deltas) */
  ageAtSend?: number;
}

export class ConfigSession {
  private acked: Sent | undefined;
  private inflight: Sent | undefined;
  private subscribed = false;
  private closed = false;
  private lastNack: { version: number; reason: string } | undefined;
  /** bytes of updates written to this agent (the harness reports them per agent) */
  bytesSent = 0;

  constructor(
    readonly node: string,
    private readonly call: grpc.ServerDuplexStream<ConfigRequest__Output, ConfigUpdate>,
    private readonly source: ConfigSource,
    private readonly registry: AgentRegistry,
    private readonly log: Logger,
  ) {}

  onRequest(req: ConfigRequest__Output): void {
    if (req.subscribe) {
      this.subscribed = true;
      this.log.info('agent subscribed', { node: this.node, haveVersion: req.subscribe.haveVersion });
      if (req.subscribe.haveVersion > 0) this.source.raiseAbove(req.subscribe.haveVersion);
      this.pump();
      return;
    }
    if (req.ack) {
      const { version, accepted, error } = req.ack;
      if (!this.inflight || this.inflight.version !== version) {
        this.log.warn('ACK for a version not in flight', { node: this.node, version, inflight: this.inflight?.version });
        return;
      }
      this.timeAnswer(this.inflight, accepted);
      if (accepted) {
        this.acked = this.inflight;
        this.lastNack = undefined;
        this.log.debug('agent ACKed', { node: this.node, version });
      } else {
        this.lastNack = { version, reason: error || 'no reason given' };
        this.log.warn('agent NACKed config', { node: this.node, version, reason: this.lastNack.reason, keeps: this.acked?.version });
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
    return this.acked?.version;
  }

  private pump(): void {
    if (this.closed || !this.subscribed || this.inflight) return;
    const version = this.source.version();
    const bundle = this.source.trustBundlePem();
    if (this.lastNack && this.lastNack.version === version) return; // the same config would be NACKed again
    if (this.acked && this.acked.version === version && this.acked.bundle === bundle) return;
    const update = this.source.encoder.update(this.node, this.acked, bundle);
    // nothing the agent can see changed: no round trip (the next delta is still based on what it ACKed)
    if (!update) return;
    const ageAtSend = update.snapshot || !this.acked ? undefined : this.source.pendingAgeMs?.(this.acked.version);
    this.inflight = { version: update.version, bundle, snapshot: update.snapshot, sentAt: performance.now(), ...(ageAtSend !== undefined ? { ageAtSend } : {}) };
    this.send(update);
  }

  private timeAnswer(sent: Sent, accepted: boolean): void {
    if (!this.source.answered || sent.sentAt === undefined) return;
    const roundtripMs = performance.now() - sent.sentAt;
    const a: ConfigAnswer = { node: this.node, version: sent.version, snapshot: sent.snapshot ?? false, accepted, roundtripMs };
    if (sent.ageAtSend !== undefined) a.propagationMs = sent.ageAtSend + roundtripMs;
    this.source.answered(a);
  }

  private send(update: EncodedUpdate): void {
    let i = 0;
    const next = (err?: Error | null) => {
      if (err || this.closed) return;
      if (i >= update.count) return;
      const chunk = update.chunk(i++);
      this.bytesSent += chunk.length;
      // pre-encoded bytes: the server's serializer passes Buffers through (server.ts)
      this.call.write(chunk as unknown as ConfigUpdate, next);
    };
    next();
    this.log.debug('sending config', { node: this.node, version: update.version, snapshot: update.snapshot, chunks: update.count, bytes: update.bytes });
  }

  private recordAckState(version: number): void {
    const prev = this.registry.get(this.node)?.lastReport;
    const report: AgentReport = {
      ...(prev ?? {
        healthy: true,
        counters: { requests: 0, requestErrors: 0, connectionsOpened: 0, connectionsActive: 0, redirects: 0, cpuPercent: 0, memoryRssBytes: 0 },
      }),
      node: this.node,
      configVersion: this.acked?.version ?? 0,
      lastSentVersion: version,
      ack: this.lastNack ? 'NACK' : 'ACK',
      reportedAt: prev?.reportedAt ?? new Date().toISOString(),
    };
    if (this.lastNack) report.nackReason = this.lastNack.reason;
    else delete report.nackReason;
    this.registry.report(report);
  }
}
