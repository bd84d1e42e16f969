// Keeps capture's maps equal to what the MeshConfig says for this node (enrolled pod cgroups, captured
// destinations), and answers the proxy's "which pod is cgroup N?" from the same snapshot, so the proxy and
// the kernel agree on who is enrolled. Pods whose cgroup does not exist yet are retried on a timer.
import type { Logger } from '../../common/log.js';
import type { MeshConfig } from '../../common/mesh.js';
import type { CgroupResolver } from '../redirect/cgroup-resolver.js';
import { desiredFromMesh } from '../redirect/desired.js';
import type { ReconcileResult } from '../redirect/manager.js';
import type { DesiredRedirect } from '../redirect/desired.js';
import type { InboundPod } from '../redirect/inbound-capture.js';

/** The part of RedirectManager this needs. */
export interface CaptureTarget {
  reconcile(desired: DesiredRedirect): ReconcileResult;
}

/** The part of InboundCapture this needs. */
export interface InboundTarget {
  reconcile(pods: InboundPod[]): { pending: string[] };
}

export class CaptureSync {
  private uidByCgroup = new Map<bigint, string>();
  private last: MeshConfig | undefined;
  private retry: NodeJS.Timeout | undefined;
  private resyncPending: NodeJS.Immediate | undefined;
  unresolved = 0;
  /** why the last reconcile failed (undefined after a success): readiness reports it */
  lastError: string | undefined;
  private inbound: InboundTarget | undefined;

  constructor(
    private readonly target: CaptureTarget,
    private readonly resolver: CgroupResolver,
    private readonly node: string,
    private readonly log: Logger,
    private readonly retryMs = 2000,
  ) {}

  /** Inbound capture (it needs the proxy, which is made after this): the pods are brought in at once. */
  setInbound(inbound: InboundTarget): void {
    this.inbound = inbound;
    this.resync();
  }

  /** Throws (so the config is NACKed) when capture refuses the desired state. */
  apply(config: MeshConfig): void {
    const { desired, unresolved, inbound } = desiredFromMesh(config, this.node, this.resolver);
    try {
      this.target.reconcile(desired);
      this.lastError = undefined;
    } catch (e) {
      this.lastError = (e as Error)?.message ?? String(e);
      throw e;
    }
    this.uidByCgroup = new Map(desired.pods.map((p) => [p.cgroupId, p.uid]));
    this.last = config;
    this.unresolved = unresolved.length;
    this.applyInbound(inbound);
    if (unresolved.length > 0) {
      this.log.info('pods waiting for their cgroup', { pods: unresolved.map((w) => `${w.namespace}/${w.name}`) });
      this.scheduleRetry();
    }
  }

  /**
   * Re-applies the last config soon (pods on this node changed: a cgroup may now exist, a namespace was
   * labelled). Bursts of calls coalesce into one pass; a failure is logged and retried on the timer.
   */
  resync(): void {
    if (!this.last || this.resyncPending) return;
    this.resyncPending = setImmediate(() => {
      this.resyncPending = undefined;
      this.reapplyLast();
    });
  }

  /** Inbound capture follows the enrolled pods; a pod not ready for it (no process yet) is retried on the timer. */
  private applyInbound(pods: InboundPod[]): void {
    if (!this.inbound) return;
    try {
      const { pending } = this.inbound.reconcile(pods);
      if (pending.length > 0) {
        this.log.info('pods waiting for inbound capture', { pods: pending });
        this.scheduleRetry();
      }
    } catch (e) {
      this.log.warn('inbound capture reconcile failed; retrying', { error: e });
      this.scheduleRetry();
    }
  }

  uidOf(cgroupId: bigint): string | undefined {
    return this.uidByCgroup.get(cgroupId);
  }

  private scheduleRetry(): void {
    if (this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.reapplyLast();
    }, this.retryMs);
    this.retry.unref();
  }

  /** Re-applies the last config; a failure is logged and retried on the timer. */
  private reapplyLast(): void {
    if (!this.last) return;
    try {
      this.apply(this.last);
    } catch (e) {
      this.log.warn('capture reconcile failed; retrying', { error: e });
      this.scheduleRetry();
    }
  }

  stop(): void {
    if (this.retry) clearTimeout(this.retry);
    if (this.resyncPending) clearImmediate(this.resyncPending);
    this.last = undefined;
  }
}
