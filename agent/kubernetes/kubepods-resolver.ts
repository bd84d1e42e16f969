// Pod UID + QoS class -> the pod's cgroup v2 directory and id, on a Kubernetes node. The agent enrolls
// that cgroup id in capture's map; capture attaches once at the kubepods cgroup (layout.kubepodsDir).
// It is capture's CgroupResolver for `--cgroup-layout kubepods` (the sandbox has its own).
import { readFileSync, statSync } from 'node:fs';
import { relative, sep } from 'node:path';

import type { Workload } from '../../common/mesh.js';
import type { CgroupResolver, ResolvedCgroup } from '../redirect/cgroup-resolver.js';

import { cgroup2Roots, parseMounts } from './cgroup-mounts.js';
import { detectKubepodsLayout, podCgroupRelPath, QOS_CLASSES, validatePodUid, type KubepodsLayout, type QosClass } from './kubepods-layout.js';

export interface PodCgroup extends ResolvedCgroup {
  /** absolute path of the pod's cgroup directory */
  path: string;
  /** cgroup v2 id: the directory's inode number, what bpf_get_current_cgroup_id() and ancestors return */
  id: bigint;
  /** depth below the cgroup2 root (root = 0), for bpf_get_current_ancestor_cgroup_id(level) */
  level: number;
  qos: QosClass;
}

export class KubepodsCgroupResolver implements CgroupResolver {
  readonly layout: KubepodsLayout;
  private readonly qosOf: (uid: string) => QosClass | undefined;

  /**
   * `qosOf` gives a pod's QoS class when the agent knows it (NodePodSource.qosOf, from the pod's status);
   * the MeshConfig Workload does not carry it, and without it the three places are tried in turn.
   */
  constructor(layout: KubepodsLayout, qosOf: (uid: string) => QosClass | undefined = () => undefined) {
    this.layout = layout;
    this.qosOf = qosOf;
  }

  /**
   * capture's CgroupResolver: the cgroup of a meshed workload (or pod UID) on this node; undefined when it
   * does not exist (yet) or the UID is unusable.
   */
  resolve(workload: Workload | string): ResolvedCgroup | undefined {
    const uid = typeof workload === 'string' ? workload : workload.uid;
    try {
      return this.resolvePod(uid, this.qosOf(uid));
    } catch {
      return undefined; // a UID that cannot name a cgroup (validatePodUid): never a path outside kubepods
    }
  }

  /** Where the pod's cgroup is or will be, best guess first: its QoS class, then the others. */
  candidates(uid: string, qos?: QosClass): { path: string; qos: QosClass }[] {
    validatePodUid(uid);
    const order = qos ? [qos, ...QOS_CLASSES.filter((q) => q !== qos)] : [...QOS_CLASSES];
    return order.map((q) => ({ path: `${this.layout.kubepodsDir}/${podCgroupRelPath(this.layout, uid, q)}`, qos: q }));
  }

  /**
   * The pod's cgroup, or undefined when it does not exist (yet: the kubelet creates it when it starts the
   * pod sandbox; or any more: the pod is gone). The QoS class is a pod's status.qosClass; it is immutable,
   * but the others are tried too so a pod whose status is not filled in yet still resolves.
   */
  resolvePod(uid: string, qos?: QosClass): PodCgroup | undefined {
    for (const c of this.candidates(uid, qos)) {
      let st;
      try {
        st = statSync(c.path, { bigint: true });
      } catch {
        continue;
      }
      if (!st.isDirectory()) continue;
      const rel = relative(this.layout.cgroup2Mount, c.path);
      return { path: c.path, id: st.ino, level: rel === '' ? 0 : rel.split(sep).length, qos: c.qos };
    }
    return undefined;
  }
}

export interface OpenKubepodsOptions {
  /** the agent's --cgroup-root: the node's cgroup tree as mounted in the agent's container, or kubepods itself */
  cgroupRoot?: string;
  /** text of /proc/mounts; read from the file when omitted */
  procMounts?: string;
  /** a pod's QoS class when known (NodePodSource.qosOf) */
  qosOf?: (uid: string) => QosClass | undefined;
}

/**
 * Finds the node's kubepods layout: cgroup2 mounts from /proc/mounts (refusing a cgroup-v1-only node with
 * WEFT_ERR_CGROUP_V1_ONLY), then the kubepods cgroup under them (WEFT_ERR_KUBEPODS_NOT_FOUND / _AMBIGUOUS).
 */
export function openKubepods(opts: OpenKubepodsOptions = {}): KubepodsCgroupResolver {
  const mounts = parseMounts(opts.procMounts ?? readFileSync('/proc/mounts', 'utf8'));
  const roots = cgroup2Roots(mounts, opts.cgroupRoot);
  const v2 = mounts.filter((m) => m.fsType === 'cgroup2').map((m) => m.mountPoint);
  const mountOf = (root: string) =>
    v2.filter((m) => root === m || m === '/' || root.startsWith(m + '/')).sort((a, b) => b.length - a.length)[0] ?? root;
  return new KubepodsCgroupResolver(detectKubepodsLayout(roots.map((root) => ({ root, mount: mountOf(root) }))), opts.qosOf);
}
