// The Kubernetes workload source: one reflector (list/watch loop) per watched collection, all feeding the
// controller's object store through the ObjectSink seam. See kubernetes/reflector.ts for the semantics.
import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../../common/log.js';
import type { ObjectSink, Source } from './types.js';
import { WATCHED_KINDS, type WatchedKind } from './kubernetes/kinds.js';
import { DEFAULT_TIMING, Reflector, type ReflectorState, type ReflectorTiming } from './kubernetes/reflector.js';

export { WATCHED_KINDS, collectionPath, type WatchedKind } from './kubernetes/kinds.js';
export { KubeApiError } from './kubernetes/lister.js';
export { DEFAULT_TIMING, type ReflectorTiming } from './kubernetes/reflector.js';

export interface KubernetesSourceOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  /** the name objects are recorded under in the store (default "kubernetes") */
  sourceName?: string;
  /** which collections to watch (default: WATCHED_KINDS) */
  kinds?: readonly WatchedKind[];
  timing?: Partial<ReflectorTiming>;
}

export interface KindStatus {
  kind: string;
  apiVersion: string;
  state: ReflectorState;
  resourceVersion: string;
  lists: number;
  watches: number;
  events: number;
  refused: number;
  relistsOnGone: number;
}

/** In a pod: the service account's in-cluster config; elsewhere: $KUBECONFIG or ~/.kube/config. */
export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return kc;
}

export class KubernetesSource implements Source {
  private reflectors: Reflector[] = [];
  private readonly opts: KubernetesSourceOptions;

  constructor(opts: KubernetesSourceOptions) {
    this.opts = opts;
  }

  /** resolves once every collection has had its first LIST attempt; failures keep retrying in the background */
  async start(sink: ObjectSink): Promise<void> {
    if (this.reflectors.length) throw new Error('KubernetesSource already started');
    const timing = { ...DEFAULT_TIMING, ...this.opts.timing };
    const log = this.opts.logger.child('kubernetes');
    const source = this.opts.sourceName ?? 'kubernetes';
    this.reflectors = (this.opts.kinds ?? WATCHED_KINDS).map((k) => new Reflector(this.opts.kubeConfig, k, sink, source, log, timing));
    await Promise.all(this.reflectors.map((r) => r.start()));
    log.info('kubernetes source started', { server: this.opts.kubeConfig.getCurrentCluster()?.server, kinds: this.reflectors.length });
  }

  async stop(): Promise<void> {
    await Promise.all(this.reflectors.map((r) => r.stop()));
  }

  /** per-collection state, for the operator page and tests */
  status(): KindStatus[] {
    return this.reflectors.map((r) => ({
      kind: r.kind.kind,
      apiVersion: r.kind.apiVersion,
      state: r.state,
      resourceVersion: r.resourceVersion,
      ...r.stats,
    }));
  }
}
