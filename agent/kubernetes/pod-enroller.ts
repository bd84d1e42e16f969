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
  resolvePod(uid: string, qos?: QosClass): PodCgroup | undefined;
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
  /** what the pod source wants enrolled now, by pod uid (the latest version of each pod) */
  private readonly wanted = new Map<string, NodePod>();
  /** enrolled in capture, by pod uid */
  private readonly active = new Map<string, { pod: NodePod; cgroup: PodCgroup }>();
  /** wanted but not enrolled (in this version) yet: no cgroup, or capture refused */
  private readonly pending = new Map<string, NodePod>();
  /** capture calls in flight, by pod uid; another attempt for the same pod waits for it (rerun) */
  private readonly inflight = new Set<string>();
  private readonly rerun = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: PodEnrollerOptions) {
    this.opts = opts;
  }

  enroll(pod: NodePod): void {
    this.wanted.set(pod.uid, pod);
    this.pending.set(pod.uid, pod);
    void this.attempt(pod.uid);
    this.armTimer();
  }

  unenroll(pod: NodePod): void {
    this.wanted.delete(pod.uid);
    this.pending.delete(pod.uid);
    const cur = this.active.get(pod.uid);
    if (!cur) return; // an attempt in flight notices and undoes itself
    this.active.delete(pod.uid);
    this.release(cur.pod, cur.cgroup);
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
    if (this.inflight.has(uid)) {
      this.rerun.add(uid);
      return;
    }
    const pod = this.pending.get(uid);
    if (!pod) return;
    let cgroup: PodCgroup | undefined;
    try {
      cgroup = this.opts.cgroups.resolvePod(pod.uid, pod.qos);
    } catch (e) {
      // A UID that can never make a path (see validatePodUid): drop it rather than retry forever.
      this.pending.delete(uid);
      this.opts.logger.error('cannot find pod cgroup', { pod: `${pod.namespace}/${pod.name}`, uid, error: errorMessage(e) });
      return;
    }
    if (!cgroup) return; // not created yet: stays pending
    const prev = this.active.get(uid);
    this.inflight.add(uid);
    let ok = false;
    try {
      await this.opts.target.enroll(pod, cgroup);
      ok = true;
    } catch (e) {
      this.opts.logger.warn('capture refused pod; will retry', { pod: `${pod.namespace}/${pod.name}`, cgroup: cgroup.path, error: errorMessage(e) });
    } finally {
      this.inflight.delete(uid);
    }
    if (ok) {
      if (!this.wanted.has(uid)) {
        // unenrolled while capture was busy: undo
        this.active.delete(uid);
        this.release(pod, cgroup);
      } else {
        this.active.set(uid, { pod, cgroup });
        if (this.pending.get(uid) === pod) this.pending.delete(uid);
        if (!prev) this.opts.logger.info('pod enrolled', { pod: `${pod.namespace}/${pod.name}`, cgroup: cgroup.path, cgroupId: cgroup.id });
      }
    }
    if (this.rerun.delete(uid)) await this.attempt(uid);
    if (this.pending.size === 0) this.close();
  }

  private release(pod: NodePod, cgroup: PodCgroup): void {
    Promise.resolve()
      .then(() => this.opts.target.unenroll(pod, cgroup))
      .catch((e: unknown) => this.opts.logger.warn('could not release pod cgroup', { pod: `${pod.namespace}/${pod.name}`, cgroup: cgroup.path, error: errorMessage(e) }));
  }

  private armTimer(): void {
    if (this.timer || this.pending.size === 0) return;
    this.timer = setInterval(() => void this.retryPending(), this.opts.retryIntervalMs ?? 2000);
    this.timer.unref();
  }
}
