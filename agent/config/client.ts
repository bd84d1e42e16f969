// The agent's config client. On start it applies the last good config from disk (so it serves even with
// the controller down), then keeps a config stream to the controller open, reconnecting with backoff. Each
// update is applied through the `apply` callback: if it throws, the agent NACKs with the reason and keeps
// the last good config; if it returns, the agent ACKs and saves the new config to disk. Every update is
// timed step by step (ConfigApplyTiming: receive, merge, apply, total) for weft_config_apply_seconds.
import type * as grpc from '@grpc/grpc-js';

import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { silentLogger } from '../../common/log.js';
import type { MeshConfig } from '../../common/mesh.js';
import { applyConverted, UpdateAssembler } from '../../proto/delta.js';
import type { ConfigRequest } from '../../proto/generated/weft/v1/ConfigRequest.js';
import type { ConfigUpdate__Output } from '../../proto/generated/weft/v1/ConfigUpdate.js';
import { LastGoodStore } from './last-good.js';

/** what the client needs from the controller connection (ControllerConnection implements it) */
export interface ConfigStreamOpener {
  streamConfig(): grpc.ClientDuplexStream<ConfigRequest, ConfigUpdate__Output>;
}

export type ApplyConfig = (config: MeshConfig, trustBundlePem: string, origin: 'disk' | 'controller') => void | Promise<void>;

/** one update from the controller, timed in ms from the arrival of its first chunk */
export interface ConfigApplyTiming {
  version: number;
  snapshot: boolean;
  accepted: boolean;
  /** first chunk's arrival to the last one decoded (chunks in flight, an earlier update still applying) */
  receiveMs: number;
  /** the update merged onto the config held (applyConverted) */
  mergeMs: number;
  /** the `apply` callback: capture, indexes, pipeline */
  applyMs: number;
  /** first chunk's arrival to the ACK or NACK written */
  totalMs: number;
}

export interface ConfigClientOptions {
  connection: ConfigStreamOpener;
  /** directory for the last good config; none: memory only */
  stateDir?: string;
  apply: ApplyConfig;
  logger?: Logger;
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** told of every update from the controller once it is ACKed or NACKed */
  timed?: (t: ConfigApplyTiming) => void;
}

export interface ConfigClientStatus {
  connected: boolean;
  /** version being served (0: none) */
  configVersion: number;
  lastReceivedVersion: number;
  ack: 'ACK' | 'NACK' | 'PENDING';
  nackReason?: string;
  /** when the stream last went down, ISO */
  disconnectedSince?: string;
}

export class ConfigClient {
  private readonly log: Logger;
  private readonly disk: LastGoodStore | undefined;
  private current: { config: MeshConfig; trustBundlePem: string } | undefined;
  private stream: grpc.ClientDuplexStream<ConfigRequest, ConfigUpdate__Output> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private delay: number;
  private stopped = false;
  private queue: Promise<void> = Promise.resolve();
  /** chunks of the update being received (a big update comes in ~256 KiB chunks, converted as they come) */
  private readonly assembler = new UpdateAssembler();
  /** performance.now() when the first chunk of the update being received arrived */
  private firstChunkAt = 0;
  private saving: Promise<void> | undefined;
  private pendingSave: { config: MeshConfig; trustBundlePem: string } | undefined;
  private st: ConfigClientStatus = { connected: false, configVersion: 0, lastReceivedVersion: 0, ack: 'PENDING' };
  private readonly versionWaiters = new Set<{ version: number; resolve: () => void }>();

  constructor(private readonly opts: ConfigClientOptions) {
    this.log = opts.logger ?? silentLogger;
    this.disk = opts.stateDir ? new LastGoodStore(opts.stateDir) : undefined;
    this.delay = opts.retryInitialMs ?? 500;
  }

  async start(): Promise<void> {
    const saved = await this.disk?.load();
    if (saved) {
      try {
        await this.opts.apply(saved.config, saved.trustBundlePem, 'disk');
        this.current = { config: saved.config, trustBundlePem: saved.trustBundlePem };
        this.st.configVersion = saved.config.version;
        this.log.info('serving last good config from disk', { version: saved.config.version, savedAt: saved.savedAt });
      } catch (e) {
        this.log.warn('last good config on disk was refused; waiting for the controller', { err: e });
      }
    }
    this.open();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.stream?.cancel();
    this.stream = undefined;
  }

  config(): MeshConfig | undefined {
    return this.current?.config;
  }

  status(): ConfigClientStatus {
    return { ...this.st };
  }

  /** resolves once a config of at least `version` is being served (tests, readiness) */
  waitForVersion(version: number): Promise<void> {
    if (this.st.configVersion >= version) return Promise.resolve();
    return new Promise((resolve) => this.versionWaiters.add({ version, resolve }));
  }

  private open(): void {
    if (this.stopped) return;
    const stream = this.opts.connection.streamConfig();
    this.stream = stream;
    this.assembler.reset();
    let gotData = false;
    stream.on('data', (u: ConfigUpdate__Output) => {
      if (!gotData) {
        gotData = true;
        this.st.connected = true;
        delete this.st.disconnectedSince;
        this.delay = this.opts.retryInitialMs ?? 500;
        this.log.info('config stream up');
      }
      // updates are applied one at a time, in order
      const at = performance.now();
      this.queue = this.queue.then(() => this.onUpdate(stream, u, at));
    });
    const down = (why: string) => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      const wasConnected = this.st.connected;
      this.st.connected = false;
      if (wasConnected || !this.st.disconnectedSince) this.st.disconnectedSince = new Date().toISOString();
      if (this.stopped) return;
      const wait = this.delay * (0.8 + Math.random() * 0.4);
      this.log.warn('config stream down; serving last good config and reconnecting', { reason: why, retryInMs: Math.round(wait), version: this.st.configVersion });
      this.delay = Math.min(this.delay * 2, this.opts.retryMaxMs ?? 30_000);
      this.retryTimer = setTimeout(() => this.open(), wait);
      this.retryTimer.unref?.();
    };
    stream.on('error', (e: Error) => down(e.message));
    stream.on('end', () => down('controller closed the stream'));
    stream.write({ subscribe: { haveVersion: this.st.configVersion } });
  }

  /**
   * Saves the newest accepted config to disk without holding up the next update: one save at a time (in
   * slices, last-good.ts), and a config accepted meanwhile replaces any not yet started.
   */
  private persist(c: { config: MeshConfig; trustBundlePem: string }): void {
    if (!this.disk) return;
    this.pendingSave = c;
    if (this.saving) return;
    const disk = this.disk;
    this.saving = (async () => {
      while (this.pendingSave) {
        const next = this.pendingSave;
        this.pendingSave = undefined;
        await disk.save(next.config, next.trustBundlePem).catch((e: unknown) => this.log.warn('could not save last good config', { err: e }));
      }
      this.saving = undefined;
    })();
  }

  /** steps not reached (an update refused while decoding) count as taking no time */
  private timeUpdate(u: ConfigUpdate__Output, accepted: boolean, step: { received: number; merged: number }): void {
    const end = performance.now();
    const received = step.received || end;
    const merged = step.merged || received;
    const t: ConfigApplyTiming = {
      version: u.version,
      snapshot: u.snapshot,
      accepted,
      receiveMs: received - this.firstChunkAt,
      mergeMs: merged - received,
      applyMs: step.merged ? end - merged : 0,
      totalMs: end - this.firstChunkAt,
    };
    const ms = (x: number) => Math.round(x * 100) / 100;
    this.log.debug('config update timed', { version: t.version, snapshot: t.snapshot, accepted, receiveMs: ms(t.receiveMs), mergeMs: ms(t.mergeMs), applyMs: ms(t.applyMs), totalMs: ms(t.totalMs) });
    this.opts.timed?.(t);
  }

  /** resolves once the newest accepted config is on disk (tests, shutdown) */
  async flushDisk(): Promise<void> {
    while (this.saving) await this.saving;
  }

  private async onUpdate(stream: grpc.ClientDuplexStream<ConfigRequest, ConfigUpdate__Output>, u: ConfigUpdate__Output, arrivedAt: number): Promise<void> {
    if (this.stream !== stream) return; // a chunk of a stream that went down: its update is resent whole
    if (this.assembler.chunks === 0) this.firstChunkAt = arrivedAt;
    let next;
    const step = { received: 0, merged: 0 };
    try {
      const whole = this.assembler.add(u);
      if (!whole) return; // more chunks of this version follow
      step.received = performance.now();
      this.st.lastReceivedVersion = u.version;
      next = applyConverted(this.current?.config, whole.head, whole.entries);
      step.merged = performance.now();
      await this.opts.apply(next.config, next.trustBundlePem, 'controller');
    } catch (e) {
      const reason = errorMessage(e);
      this.st.ack = 'NACK';
      this.st.nackReason = reason;
      this.log.warn('refused config; keeping last good', { version: u.version, keeps: this.st.configVersion, reason });
      if (this.stream === stream) stream.write({ ack: { version: u.version, accepted: false, error: reason } });
      this.timeUpdate(u, false, step);
      return;
    }
    this.current = next;
    this.st.configVersion = next.config.version;
    this.st.ack = 'ACK';
    delete this.st.nackReason;
    if (this.stream === stream) stream.write({ ack: { version: u.version, accepted: true, error: '' } });
    this.timeUpdate(u, true, step);
    this.persist(next);
    for (const w of this.versionWaiters) {
      if (this.st.configVersion >= w.version) {
        this.versionWaiters.delete(w);
        w.resolve();
      }
    }
  }
}
