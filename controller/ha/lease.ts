// Leader election over a coordination.k8s.io/v1 Lease (what kube-controller-manager and client-go's
// leaderelection use): every controller replica serves agents and signs CSRs, but the few jobs that must
// have one writer (publishing the trust bundle ConfigMap) run on the replica holding the Lease. Taking the
// Lease is an update with the resourceVersion read before it, so two replicas can never both win (the API
// server answers 409 to the slower one): no consensus of our own.
//
// A holder renews every renewMs; others take the Lease over once it was not renewed for its duration.
// A holder that cannot renew before its own deadline steps down on its own (stop leading before another
// replica may start), the same rule as client-go's RenewDeadline.
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';

import type { Logger } from '../../common/log.js';
import { silentLogger } from '../../common/log.js';

export type LeaseApi = Pick<CoordinationV1Api, 'readNamespacedLease' | 'createNamespacedLease' | 'replaceNamespacedLease'>;

export interface LeaseElectorOptions {
  api: LeaseApi;
  namespace: string;
  name: string;
  /** this replica (the pod name) */
  identity: string;
  /** how long a Lease not renewed stays with its holder; default 15 s */
  leaseDurationMs?: number;
  /** how often the holder renews and the others check; default 2 s */
  renewMs?: number;
  onStartedLeading?: () => void;
  onStoppedLeading?: () => void;
  logger?: Logger;
  now?: () => number;
}

function statusCode(e: unknown): number | undefined {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

export class LeaseElector {
  private leading = false;
  private lastRenewed = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly durationMs: number;

  constructor(private readonly o: LeaseElectorOptions) {
    this.log = o.logger ?? silentLogger;
    this.now = o.now ?? Date.now;
    this.durationMs = o.leaseDurationMs ?? 15_000;
  }

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    const loop = async () => {
      if (this.stopped) return;
      await this.tryOnce();
      if (this.stopped) return;
      this.timer = setTimeout(() => void loop(), this.o.renewMs ?? 2000);
      this.timer.unref();
    };
    void loop();
  }

  /** stops renewing; a leader releases the Lease (holder cleared) so another replica takes over at once */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leading) return;
    this.setLeading(false);
    try {
      const lease = await this.o.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
      if (lease.spec?.holderIdentity !== this.o.identity) return;
      lease.spec.holderIdentity = undefined;
      lease.spec.renewTime = undefined;
      await this.o.api.replaceNamespacedLease({ name: this.o.name, namespace: this.o.namespace, body: lease });
    } catch (e) {
      this.log.warn('could not release the lease', { lease: this.where(), err: e });
    }
  }

  /** one round: read, then renew or take over when allowed; public for tests */
  async tryOnce(): Promise<void> {
    const now = this.now();
    try {
      let lease: V1Lease | undefined;
      try {
        lease = await this.o.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
      } catch (e) {
        if (statusCode(e) !== 404) throw e;
      }
      if (!lease) {
        await this.o.api.createNamespacedLease({ namespace: this.o.namespace, body: this.body(undefined, now, 0) });
        return this.renewed(now);
      }
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity;
      const renewedAt = spec.renewTime ? new Date(spec.renewTime as unknown as string).getTime() : 0;
      const expired = !holder || renewedAt + (spec.leaseDurationSeconds ?? this.durationMs / 1000) * 1000 < now;
      if (holder !== this.o.identity && !expired) {
        this.setLeading(false);
        return;
      }
      const transitions = (spec.leaseTransitions ?? 0) + (holder === this.o.identity ? 0 : 1);
      await this.o.api.replaceNamespacedLease({ name: this.o.name, namespace: this.o.namespace, body: this.body(lease, now, transitions) });
      this.renewed(now);
    } catch (e) {
      // 409: another replica updated it first; anything else: the API server is away. Either way a leader
      // keeps leading only until its renew deadline.
      if (statusCode(e) !== 409) this.log.warn('lease round failed', { lease: this.where(), err: e });
      if (this.leading && now - this.lastRenewed > this.durationMs * 0.66) {
        this.log.warn('could not renew the lease in time; stepping down', { lease: this.where() });
        this.setLeading(false);
      }
    }
  }

  private renewed(now: number): void {
    this.lastRenewed = now;
    this.setLeading(true);
  }

  private setLeading(v: boolean): void {
    if (v === this.leading) return;
    this.leading = v;
    this.log.info(v ? 'became leader' : 'stopped leading', { lease: this.where(), identity: this.o.identity });
    try {
      (v ? this.o.onStartedLeading : this.o.onStoppedLeading)?.();
    } catch (e) {
      this.log.error('leader callback failed', { err: e });
    }
  }

  private where(): string {
    return `${this.o.namespace}/${this.o.name}`;
  }

  private body(prev: V1Lease | undefined, now: number, transitions: number): V1Lease {
    const held = prev?.spec?.holderIdentity === this.o.identity && prev.spec.acquireTime;
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...(prev?.metadata ?? {}), name: this.o.name, namespace: this.o.namespace, labels: { 'app.kubernetes.io/part-of': 'weft' } },
      spec: {
        holderIdentity: this.o.identity,
        leaseDurationSeconds: Math.ceil(this.durationMs / 1000),
        // client-node types MicroTime as Date and serialises it
        acquireTime: (held ? prev!.spec!.acquireTime : new Date(now)) as never,
        renewTime: new Date(now) as never,
        leaseTransitions: transitions,
      },
    };
  }
}
