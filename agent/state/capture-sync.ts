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
  /** read the kernel's maps again at the next reconcile instead of trusting the in-memory mirror */
  forgetMirror?(): void;
  /** re-attach programs whose links are gone; returns what was re-attached */
  repairLinks?(): string[];
}

/** The part of InboundCapture this needs. */
export interface InboundTarget {
  reconcile(pods: InboundPod[]): { pending: string[] };
}

/** Every how many audits the destination map is walked in full (with a 5 s audit: a minute). */
const AUDIT_WALK_EVERY = 12;

export class CaptureSync {
  private uidByCgroup = new Map<bigint, string>();
  private last: MeshConfig | undefined;
  private retry: NodeJS.Timeout | undefined;
  private resyncPending: NodeJS.Immediate | undefined;
  unresolved = 0;
  /** why the last reconcile failed (undefined after a success): readiness reports it */
  lastError: string | undefined;
  private inbound: InboundTarget | undefined;
  private auditTimer: NodeJS.Timeout | undefined;
  /** the pods the last apply enrolled: an audit that finds others (a cgroup appeared) is a retry, not drift */
  private appliedUids = new Set<string>();
  private audits = 0;
  private auditPending: NodeJS.Immediate | undefined;
  /** what an audit found wrong and put right, e.g. ("pods", 1), ("links", 2) */
  onRepair: (what: string, n: number) => void = () => {};

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
    this.appliedUids = new Set(desired.pods.map((p) => p.uid));
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

  /**
   * Capture audit: the kernel's state is compared with what the config in force says, and whatever drifted
   * (a pod's enrolment or a destination removed from the maps, a program detached) is put back, counted and
   * logged. Runs on a timer and at once when a meshed pod of this node was seen to bypass capture.
   */
  audit(): void {
    if (!this.last) return;
    const { desired } = desiredFromMesh(this.last, this.node, this.resolver);
    if (desired.pods.length !== this.appliedUids.size || desired.pods.some((p) => !this.appliedUids.has(p.uid))) return this.reapplyLast();
    try {
      // the destination mirror is re-read from the kernel every few audits (a full walk of the map)
      if (++this.audits % AUDIT_WALK_EVERY === 0) this.target.forgetMirror?.();
      const links = this.target.repairLinks?.() ?? [];
      const r = this.target.reconcile(desired);
      const found: Record<string, number> = { links: links.length, pods: r.enrolled + r.modeChanged, stale_pods: r.unenrolled, destinations: r.destinationsAdded + r.destinationsRemoved };
      const drift = Object.entries(found).filter(([, n]) => n > 0);
      for (const [what, n] of drift) this.onRepair(what, n);
      if (drift.length > 0) this.log.warn('capture had drifted from the config in force; repaired', { ...Object.fromEntries(drift), links });
    } catch (e) {
      this.log.warn('capture audit failed; retrying', { error: e });
    }
  }

  /** audit() soon (coalesced): a meshed pod of this node bypassed capture. */
  auditSoon(): void {
    if (this.auditPending) return;
    this.auditPending = setImmediate(() => {
      this.auditPending = undefined;
      this.audit();
    });
  }

  /** audit() every `intervalMs` until stop(). */
  startAuditing(intervalMs: number): void {
    if (this.auditTimer) return;
    this.auditTimer = setInterval(() => this.audit(), intervalMs);
    this.auditTimer.unref();
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
    if (this.auditTimer) clearInterval(this.auditTimer);
    if (this.auditPending) clearImmediate(this.auditPending);
    this.last = undefined;
  }
}
