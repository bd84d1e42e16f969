// The pods on this node that Weft captures, kept current from the Kubernetes API: a watch of the pods on
// this node (field selector spec.nodeName=<node>) and of namespaces (for the weft.io/mesh label). The
// initial list reports every pod already running, so pods started before the agent are enrolled without
// being restarted; a namespace gaining or losing the label enrolls or releases all its pods.
//
// The informers are passed in (see kubernetes-informers.ts for the real ones), so tests drive this class
// with plain event emitters.
import type { Logger } from '../../common/log.js';
import { enrollmentDecision, type NamespaceLike, type NodePod, type PodLike } from './enrollment-policy.js';
import { QOS_CLASSES, type QosClass } from './kubepods-layout.js';

export type InformerEvent = 'add' | 'update' | 'delete';

/** The part of @kubernetes/client-node's Informer (ListWatch) this source uses. */
export interface WatchedCollection<T> {
  on(verb: InformerEvent, cb: (obj: T) => void): void;
  on(verb: 'error', cb: (err?: unknown) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Receives enrollment changes. `enroll` is an upsert: it is called again when an enrolled pod changes. */
export interface PodEnrollmentSink {
  enroll(pod: NodePod): void;
  unenroll(pod: NodePod): void;
}

export interface NodePodSourceOptions {
  nodeName: string;
  systemNamespace: string;
  pods: WatchedCollection<PodLike>;
  namespaces: WatchedCollection<NamespaceLike>;
  sink: PodEnrollmentSink;
  logger: Logger;
  /** first delay before restarting a watch that failed; doubles up to maxRestartDelayMs */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
}

export class NodePodSource {
  private readonly opts: NodePodSourceOptions;
  private readonly pods = new Map<string, PodLike>();
  private readonly nsLabels = new Map<string, Record<string, string>>();
  private readonly enrolledPods = new Map<string, NodePod>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(opts: NodePodSourceOptions) {
    this.opts = opts;
    const { pods, namespaces } = opts;
    namespaces.on('add', (ns) => this.onNamespace(ns));
    namespaces.on('update', (ns) => this.onNamespace(ns));
    namespaces.on('delete', (ns) => this.onNamespaceDeleted(ns));
    pods.on('add', (p) => this.onPod(p));
    pods.on('update', (p) => this.onPod(p));
    pods.on('delete', (p) => this.onPodDeleted(p));
    namespaces.on('error', (err) => this.restartLater('namespaces', namespaces, err));
    pods.on('error', (err) => this.restartLater('pods', pods, err));
  }

  /** Lists namespaces, then this node's pods (so the first pod events already know their namespace), then watches. */
  async start(): Promise<void> {
    this.stopped = false;
    // A failed list is reported through 'error' (and restarted there); a failed first watch request rejects.
    // Either way the agent keeps running and retries: it must not crash because the API server is away.
    await this.opts.namespaces.start().catch((e: unknown) => this.restartLater('namespaces', this.opts.namespaces, e));
    await this.opts.pods.start().catch((e: unknown) => this.restartLater('pods', this.opts.pods, e));
    this.opts.logger.info('watching pods on this node', { node: this.opts.nodeName, pods: this.pods.size, enrolled: this.enrolledPods.size });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.all([this.opts.pods.stop(), this.opts.namespaces.stop()]);
  }

  /** A pod's QoS class (status.qosClass) when this node runs it: the hint KubepodsCgroupResolver takes. */
  qosOf(uid: string): QosClass | undefined {
    const q = this.pods.get(uid)?.status?.qosClass;
    return QOS_CLASSES.find((c) => c === q);
  }

  /** The pods enrolled now. */
  enrolled(): NodePod[] {
    return [...this.enrolledPods.values()];
  }

  private onNamespace(ns: NamespaceLike): void {
    const name = ns.metadata?.name;
    if (!name) return;
    this.nsLabels.set(name, { ...(ns.metadata?.labels ?? {}) });
    this.reconcileNamespace(name);
  }

  private onNamespaceDeleted(ns: NamespaceLike): void {
    const name = ns.metadata?.name;
    if (!name) return;
    this.nsLabels.delete(name);
    this.reconcileNamespace(name);
  }

  private onPod(p: PodLike): void {
    const uid = p.metadata?.uid;
    if (!uid) return;
    this.pods.set(uid, p);
    this.reconcile(uid);
  }

  private onPodDeleted(p: PodLike): void {
    const uid = p.metadata?.uid;
    if (!uid) return;
    this.pods.delete(uid);
    this.reconcile(uid);
  }

  private reconcileNamespace(ns: string): void {
    for (const [uid, p] of this.pods) if (p.metadata?.namespace === ns) this.reconcile(uid);
  }

  private reconcile(uid: string): void {
    const pod = this.pods.get(uid);
    const before = this.enrolledPods.get(uid);
    const decision = pod
      ? enrollmentDecision(pod, {
          nodeName: this.opts.nodeName,
          systemNamespace: this.opts.systemNamespace,
          namespaceLabels: this.nsLabels.get(pod.metadata?.namespace ?? ''),
        })
      : ({ enroll: false, reason: 'pod deleted' } as const);
    if (decision.enroll) {
      if (before && samePod(before, decision.pod)) return;
      this.enrolledPods.set(uid, decision.pod);
      this.opts.logger.debug(before ? 'enrolled pod changed' : 'enrolling pod', { pod: `${decision.pod.namespace}/${decision.pod.name}`, uid });
      this.opts.sink.enroll(decision.pod);
    } else if (before) {
      this.enrolledPods.delete(uid);
      this.opts.logger.debug('releasing pod', { pod: `${before.namespace}/${before.name}`, uid, reason: decision.reason });
      this.opts.sink.unenroll(before);
    }
  }

  // ListWatch stops on a watch or list error (API server restart, expired token); restart it with backoff.
  // On restart it relists and reports deletes for pods that vanished meanwhile.
  private restartLater(what: string, informer: WatchedCollection<unknown>, err: unknown, attempt = 0): void {
    if (this.stopped) return;
    const base = this.opts.restartDelayMs ?? 1000;
    const delay = Math.min(base * 2 ** attempt, this.opts.maxRestartDelayMs ?? 30_000);
    this.opts.logger.warn(`watch of ${what} failed; restarting`, { error: err instanceof Error ? err : String(err), inMs: delay });
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.stopped) return;
      informer.start().catch((e: unknown) => this.restartLater(what, informer, e, attempt + 1));
    }, delay);
    t.unref();
    this.timers.add(t);
  }
}

function samePod(a: NodePod, b: NodePod): boolean {
  return (
    a.namespace === b.namespace &&
    a.name === b.name &&
    a.serviceAccount === b.serviceAccount &&
    a.qos === b.qos &&
    a.ips.length === b.ips.length &&
    a.ips.every((ip, i) => ip === b.ips[i])
  );
}
