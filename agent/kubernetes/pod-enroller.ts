// Turns "this pod should be captured" (NodePodSource) into "this cgroup id is enrolled" (capture). A pod's
// cgroup appears only when the kubelet starts its sandbox, which can be after the API reports the pod; such
// pods wait here and are retried on every pod update and on a timer, so none is missed.
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { NodePod } from './enrollment-policy.js';
import type { PodCgroup } from './kubepods-resolver.js';
import type { PodEnrollmentSink } from './node-pod-source.js';
import type { QosClass } from './kubepods-layout.js';

/** Finds a pod's cgroup (KubepodsCgroupResolver on a node; the sandbox has its own). */
export interface PodCgroupLookup {
  resolve(uid: string, qos?: QosClass): PodCgroup | undefined;
}

/** What capture offers: put a pod's cgroup id in (or take it out of) the enrolled-cgroups map. */
export interface CgroupEnrollmentTarget {
  enroll(pod: NodePod, cgroup: PodCgroup): void | Promise<void>;
  unenroll(pod: NodePod, cgroup: PodCgroup): void | Promise<void>;
}

export interface PodEnrollerOptions {
  cgroups: PodCgroupLookup;
  target: CgroupEnrollmentTarget;
  logger: Logger;
  /** how often pods whose cgroup is not there yet are retried */
  retryIntervalMs?: number;
}

export class PodEnroller implements PodEnrollmentSink {
  private readonly opts: PodEnrollerOptions;
  /** enrolled in capture, by pod uid */
  private readonly active = new Map<string, { pod: NodePod; cgroup: PodCgroup }>();
  /** wanted but not enrolled yet (no cgroup, or capture refused), by pod uid */
  private readonly pending = new Map<string, NodePod>();
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: PodEnrollerOptions) {
    this.opts = opts;
  }

  enroll(pod: NodePod): void {
    this.pending.set(pod.uid, pod);
    void this.attempt(pod.uid);
    this.armTimer();
  }

  unenroll(pod: NodePod): void {
    this.pending.delete(pod.uid);
    const cur = this.active.get(pod.uid);
    if (!cur) return;
    this.active.delete(pod.uid);
    Promise.resolve()
      .then(() => this.opts.target.unenroll(cur.pod, cur.cgroup))
      .catch((e: unknown) => this.opts.logger.warn('could not release pod cgroup', { pod: `${pod.namespace}/${pod.name}`, cgroup: cur.cgroup.path, error: errorMessage(e) }));
  }

  /** Pods enrolled in capture now, with their cgroups. */
  enrolled(): { pod: NodePod; cgroup: PodCgroup }[] {
    return [...this.active.values()];
  }

  /** Pods wanted but whose cgroup was not found (or capture refused) so far. */
  waiting(): NodePod[] {
    return [...this.pending.values()];
  }

  /** Retries every waiting pod now; resolves when all attempts are done. */
  async retryPending(): Promise<void> {
    await Promise.all([...this.pending.keys()].map((uid) => this.attempt(uid)));
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async attempt(uid: string): Promise<void> {
    const pod = this.pending.get(uid);
    if (!pod) return;
    let cgroup: PodCgroup | undefined;
    try {
      cgroup = this.opts.cgroups.resolve(pod.uid, pod.qos);
    } catch (e) {
      this.pending.delete(uid);
      this.opts.logger.error('cannot find pod cgroup', { pod: `${pod.namespace}/${pod.name}`, uid, error: errorMessage(e) });
      return;
    }
    if (!cgroup) return; // not created yet: stays pending
    const prev = this.active.get(uid);
    try {
      await this.opts.target.enroll(pod, cgroup);
    } catch (e) {
      this.opts.logger.warn('capture refused pod; will retry', { pod: `${pod.namespace}/${pod.name}`, cgroup: cgroup.path, error: errorMessage(e) });
      return;
    }
    // unenroll() may have run while capture was busy: then undo.
    if (this.pending.get(uid) !== pod) {
      if (!this.pending.has(uid)) await Promise.resolve(this.opts.target.unenroll(pod, cgroup)).catch(() => undefined);
      return;
    }
    this.pending.delete(uid);
    this.active.set(uid, { pod, cgroup });
    if (!prev) this.opts.logger.info('pod enrolled', { pod: `${pod.namespace}/${pod.name}`, cgroup: cgroup.path, cgroupId: cgroup.id });
    if (this.pending.size === 0) this.close();
  }

  private armTimer(): void {
    if (this.timer || this.pending.size === 0) return;
    this.timer = setInterval(() => void this.retryPending(), this.opts.retryIntervalMs ?? 2000);
    this.timer.unref();
  }
}
