// Where a pod's cgroup is. The desired-state computation asks a CgroupResolver, so each layout (the
// sandbox's, Kubernetes' kubepods) is one small class and the rest of capture does not care.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import type { Workload } from '../../common/mesh.js';
import { cgroupId } from '../../native/cgroup.js';

export interface ResolvedCgroup {
  path: string;
  id: bigint;
}

export interface CgroupResolver {
  /** The pod's cgroup, or undefined when it does not exist (yet): the pod is then enrolled on a later pass. */
  resolve(workload: Workload): ResolvedCgroup | undefined;
}

/** The sandbox layout: each pod's cgroup is `<cgroupRoot>/pod-<metadata.uid>`. */
export class SandboxCgroupResolver implements CgroupResolver {
  constructor(readonly cgroupRoot: string) {}

  static podCgroupPath(cgroupRoot: string, uid: string): string {
    return join(cgroupRoot, `pod-${uid}`);
  }

  resolve(workload: Workload): ResolvedCgroup | undefined {
    if (!/^[A-Za-z0-9._-]+$/.test(workload.uid)) return undefined; // never let a uid walk the file system
    const path = SandboxCgroupResolver.podCgroupPath(this.cgroupRoot, workload.uid);
    if (!existsSync(path)) return undefined;
    return { path, id: cgroupId(path) };
  }
}
