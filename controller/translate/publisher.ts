// Turns store changes into new MeshConfig versions, debounced: a burst of changes (a relist, `weft apply`
// of a directory, a rollout) becomes one version. Versions start from the wall clock in milliseconds and
// only go up, so they keep increasing across controller restarts and agents never see one go backwards.
import type { Logger } from '../../common/log.js';
import { silentLogger } from '../../common/log.js';
import type { MeshConfig } from '../../common/mesh.js';
import type { ObjectStore } from '../store/object-store.js';
import { translate, type TranslateOptions } from './mesh-config.js';

export interface PublisherOptions extends TranslateOptions {
  /** quiet time after the last change before a new version is computed; default 100 ms */
  debounceMs?: number;
  /** longest a change waits under a constant stream of changes; default 1 s */
  maxDelayMs?: number;
  logger?: Logger;
  now?: () => number;
}

export class ConfigPublisher {
  private config: MeshConfig;
  private builtRevision: number;
  private timer: NodeJS.Timeout | undefined;
  private firstPendingAt = 0;
  private readonly listeners = new Set<(cfg: MeshConfig) => void>();
  private readonly unsubscribe: () => void;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(
    private readonly store: ObjectStore,
    private readonly opts: PublisherOptions,
  ) {
    this.log = opts.logger ?? silentLogger;
    this.now = opts.now ?? Date.now;
    this.builtRevision = store.revision;
    this.config = translate(store, opts, this.now());
    this.unsubscribe = store.onChange(() => this.schedule());
  }

  /** the newest config */
  current(): MeshConfig {
    return this.config;
  }

  /** what one node's agent gets (today every node gets the whole mesh: any pod may call any service) */
  configFor(_node: string): MeshConfig {
    return this.config;
  }

  onConfig(fn: (cfg: MeshConfig) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** compute a pending version now (tests, shutdown) */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.build();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.unsubscribe();
    this.listeners.clear();
  }

  private schedule(): void {
    const debounce = this.opts.debounceMs ?? 100;
    const maxDelay = this.opts.maxDelayMs ?? 1000;
    const now = this.now();
    if (!this.timer) this.firstPendingAt = now;
    else clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(debounce, this.firstPendingAt + maxDelay - now));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.build();
    }, wait);
    this.timer.unref?.();
  }

  private build(): void {
    if (this.store.revision === this.builtRevision) return;
    const started = performance.now();
    this.builtRevision = this.store.revision;
    const version = Math.max(this.now(), this.config.version + 1);
    this.config = translate(this.store, this.opts, version);
    this.log.debug('new config version', {
      version,
      workloads: this.config.workloads.length,
      services: this.config.services.length,
      policies: this.config.policies.length,
      ms: Math.round(performance.now() - started),
    });
    for (const fn of this.listeners) {
      try {
        fn(this.config);
      } catch (e) {
        this.log.error('config listener failed', { err: e });
      }
    }
  }
}
