// The agent's config client. On start it applies the last good config from disk (so it serves even with
// the controller down), then keeps a config stream to the controller open, reconnecting with backoff. Each
// update is applied through the `apply` callback: if it throws, the agent NACKs with the reason and keeps
// the last good config; if it returns, the agent ACKs and saves the new config to disk.
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

export interface ConfigClientOptions {
  connection: ConfigStreamOpener;
  /** directory for the last good config; none: memory only */
  stateDir?: string;
  apply: ApplyConfig;
  logger?: Logger;
  retryInitialMs?: number;
  retryMaxMs?: number;
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
      this.queue = this.queue.then(() => this.onUpdate(stream, u));
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

  /** resolves once the newest accepted config is on disk (tests, shutdown) */
  async flushDisk(): Promise<void> {
    while (this.saving) await this.saving;
  }

  private async onUpdate(stream: grpc.ClientDuplexStream<ConfigRequest, ConfigUpdate__Output>, u: ConfigUpdate__Output): Promise<void> {
    if (this.stream !== stream) return; // a chunk of a stream that went down: its update is resent whole
    let next;
    try {
      const whole = this.assembler.add(u);
      if (!whole) return; // more chunks of this version follow
      this.st.lastReceivedVersion = u.version;
      next = applyConverted(this.current?.config, whole.head, whole.entries);
      await this.opts.apply(next.config, next.trustBundlePem, 'controller');
    } catch (e) {
      const reason = errorMessage(e);
      this.st.ack = 'NACK';
      this.st.nackReason = reason;
      this.log.warn('refused config; keeping last good', { version: u.version, keeps: this.st.configVersion, reason });
      if (this.stream === stream) stream.write({ ack: { version: u.version, accepted: false, error: reason } });
      return;
    }
    this.current = next;
    this.st.configVersion = next.config.version;
    this.st.ack = 'ACK';
    delete this.st.nackReason;
    if (this.stream === stream) stream.write({ ack: { version: u.version, accepted: true, error: '' } });
    this.persist(next);
    for (const w of this.versionWaiters) {
      if (this.st.configVersion >= w.version) {
        this.versionWaiters.delete(w);
        w.resolve();
      }
    }
  }
}
