// Turns store changes into new config versions. A change is built on the next turn of the event loop, so one
// changed route or policy is in force on the agents in milliseconds, not after a timer, while the objects of
// one synchronous burst (a relist, `weft apply` of a directory) still become one version. Only past
// `burst` versions in the last second (a rollout, a storm) are changes debounced: one version when they pause
// for debounceMs, at most maxDelayMs after the first of them, so a storm makes few versions (each one a round
// of deltas to every agent, and an entry of the history that deltas are computed from).
// Versions start from the wall clock in milliseconds and only go up, so they keep increasing across
// controller restarts and agents never see one go backwards.
//
// Translation is incremental (incremental.ts): each version records which entries changed, and the
// publisher keeps the last HISTORY versions' change sets, so a session can ask "what changed since the
// version this agent ACKed" (changesSince) instead of diffing whole configs. A version is only made when
// something an agent can see changed.
import type { Logger } from '../../common/log.js';
import { silentLogger } from '../../common/log.js';
import type { MeshConfig, NodeInfo, Service, Workload } from '../../common/mesh.js';
import type { CompiledPolicy } from '../../common/policy.js';
import { telemetryLabels } from '../../common/telemetry-labels.js';
import type { ObjectStore } from '../store/object-store.js';
import { emptyChangeSet, IncrementalTranslator, isEmptyChangeSet, mergeChangeSet, type ChangeSet } from './incremental.js';
import { cmp, type TranslateOptions } from './objects.js';

export interface PublisherOptions extends TranslateOptions {
  /** past `burst` versions in one second, changes wait until they pause this long; default 100 ms */
  debounceMs?: number;
  /** versions built on the next turn (no debounce) in any one second; default 4 */
  burst?: number;
  /** longest a change waits under a constant stream of changes; default 1 s */
  maxDelayMs?: number;
  /** versions whose change sets are kept for deltas; an agent further behind gets a snapshot; default 256 */
  history?: number;
  logger?: Logger;
  now?: () => number;
}

/** what the config stream encodes from: the translated mesh at `version`, kept by the translator */
export interface MeshView {
  readonly version: number;
  readonly trustDomain: string;
  readonly nodes: ReadonlyMap<string, NodeInfo>;
  readonly workloads: ReadonlyMap<string, Workload>;
  readonly services: ReadonlyMap<string, Service>;
  readonly policies: ReadonlyMap<string, CompiledPolicy>;
  /** the union of the changes after `version` up to this one; undefined when `version` is not known */
  changesSince(version: number): ChangeSet | undefined;
}

export interface PublishedVersion {
  version: number;
  changes: ChangeSet;
  /** translation time in ms */
  buildMs: number;
  /** from the first store change in this version to the start of its translation, in ms (the debounce) */
  waitMs: number;
}

export class ConfigPublisher implements MeshView {
  private readonly translator: IncrementalTranslator;
  private ver: number;
  private builtRevision: number;
  /** oldest first; `base` is the version each entry was built on */
  private readonly history: { version: number; base: number; changes: ChangeSet; changedAt: number }[] = [];
  private materialized: MeshConfig | undefined;
  private timer: NodeJS.Timeout | undefined;
  private firstPendingAt = 0;
  /** the pending build is an immediate one (within the burst), not a debounce timer */
  private immediate = false;
  /** when the builds of the last second started (the publisher's clock), oldest first */
  private readonly recentBuilds: number[] = [];
  private readonly listeners = new Set<(v: PublishedVersion) => void>();
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
    this.translator = new IncrementalTranslator(store, opts);
    this.translator.build();
    this.ver = this.now();
    this.unsubscribe = store.onChange((c) => {
      this.translator.mark(c);
      this.schedule();
    });
  }

  get version(): number {
    return this.ver;
  }
  get trustDomain(): string {
    return this.opts.trustDomain;
  }
  get nodes(): ReadonlyMap<string, NodeInfo> {
    return this.translator.nodes;
  }
  get workloads(): ReadonlyMap<string, Workload> {
    return this.translator.workloads;
  }
  get services(): ReadonlyMap<string, Service> {
    return this.translator.services;
  }
  get policies(): ReadonlyMap<string, CompiledPolicy> {
    return this.translator.policies;
  }

  /**
   * How long ago (ms) the oldest change that an agent holding `version` has not seen reached the store: where
   * the propagation of an update to that agent is timed from. Undefined when there is none or `version` is
   * older than the kept history.
   */
  pendingAgeMs(version: number): number | undefined {
    const i = this.history.findIndex((h) => h.base === version);
    if (i < 0) return undefined;
    for (let j = i; j < this.history.length; j++) if (this.history[j]!.changedAt > 0) return Math.max(0, this.now() - this.history[j]!.changedAt);
    return undefined;
  }

  changesSince(version: number): ChangeSet | undefined {
    if (version === this.ver) return emptyChangeSet();
    const i = this.history.findIndex((h) => h.base === version);
    if (i < 0) return undefined;
    const out = emptyChangeSet();
    for (let j = i; j < this.history.length; j++) mergeChangeSet(out, this.history[j]!.changes);
    return out;
  }

  /**
   * An agent arrived holding `version` from another replica (versions are each replica's clock): make this
   * replica's newest version number larger, so the agent's version never goes backwards. The content is
   * the same (an empty change set in the history), so agents at the previous number get an empty delta.
   */
  raiseAbove(version: number): void {
    if (version < this.ver || version > this.now() + 86_400_000) return; // not ahead, or not a plausible clock
    this.publish(Math.max(this.now(), version + 1), emptyChangeSet(), { buildMs: 0, waitMs: 0 }, 0);
  }

  /** counts for operators, without materialising the config */
  summary(): { version: number; nodes: number; workloads: number; services: number; policies: number } {
    return { version: this.ver, nodes: this.nodes.size, workloads: this.workloads.size, services: this.services.size, policies: this.policies.size };
  }

  /** the newest config as one sorted MeshConfig (built on demand and cached per version: tests, the API) */
  current(): MeshConfig {
    if (this.materialized?.version === this.ver) return this.materialized;
    const byKey = <T>(m: ReadonlyMap<string, T>) => [...m.entries()].sort((a, b) => cmp(a[0], b[0])).map(([, v]) => v);
    const services = [...this.services.values()].sort((a, b) => cmp(a.namespace, b.namespace) || cmp(a.name, b.name));
    this.materialized = { version: this.ver, trustDomain: this.opts.trustDomain, nodes: [...this.nodes.values()], workloads: byKey(this.workloads), services, policies: byKey(this.policies) };
    return this.materialized;
  }

  /**
   * What one node's agent gets: every node, service and policy (any pod may call any service: without the
   * call graph a node needs them all), every workload (endpoint identities), but labels only for the
   * workloads on this node (only local workloads are matched against selectors on the agent), except the
   * few Istio's metrics read (canonical service and revision, app, version: the peer's labels of a request).
   */
  configFor(node: string): MeshConfig {
    const cfg = this.current();
    return { ...cfg, workloads: cfg.workloads.map((w) => (w.node === node ? w : { ...w, labels: telemetryLabels(w.labels) })) };
  }

  onConfig(fn: (v: PublishedVersion) => void): () => void {
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
    if (this.timer && this.immediate) return; // joins the build already due on the next turn
    if (!this.timer) this.firstPendingAt = now;
    else clearTimeout(this.timer);
    while (this.recentBuilds.length > 0 && now - this.recentBuilds[0]! >= 1000) this.recentBuilds.shift();
    this.immediate = this.recentBuilds.length < (this.opts.burst ?? 4);
    const wait = this.immediate ? 0 : Math.max(0, Math.min(debounce, this.firstPendingAt + maxDelay - now));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.build();
    }, wait);
    this.timer.unref?.();
  }

  private build(): void {
    if (this.store.revision === this.builtRevision) return;
    const started = performance.now();
    const changedAt = this.firstPendingAt;
    const at = this.now();
    this.recentBuilds.push(at);
    const waitMs = Math.max(0, at - changedAt);
    this.builtRevision = this.store.revision;
    const changes = this.translator.build();
    if (isEmptyChangeSet(changes)) return; // nothing an agent can see: no version
    this.publish(Math.max(this.now(), this.ver + 1), changes, { buildMs: performance.now() - started, waitMs }, changedAt);
  }

  private publish(version: number, changes: ChangeSet, timing: { buildMs: number; waitMs: number }, changedAt: number): void {
    const base = this.ver;
    this.ver = version;
    this.history.push({ version: this.ver, base, changes, changedAt });
    while (this.history.length > (this.opts.history ?? 256)) this.history.shift();
    this.log.debug('new config version', {
      version: this.ver,
      changed: { nodes: changes.nodes.size, workloads: changes.workloads.size, services: changes.services.size, policies: changes.policies.size },
      ms: Math.round(timing.buildMs),
      waitedMs: Math.round(timing.waitMs),
    });
    const published: PublishedVersion = { version: this.ver, changes, ...timing };
    for (const fn of this.listeners) {
      try {
        fn(published);
      } catch (e) {
        this.log.error('config listener failed', { err: e });
      }
    }
  }
}
