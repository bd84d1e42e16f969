// How the kubelet lays out pod cgroups under cgroup v2, and finding which layout a node uses.
//
// The kubelet puts every pod in a cgroup named after its UID, inside a per-QoS-class parent, inside the
// "kubepods" cgroup. Guaranteed pods sit directly in kubepods; Burstable and BestEffort pods one level
// further down. The names depend on the kubelet's cgroup driver:
//
//   systemd  (slice units, dashes in the UID become underscores because '-' means nesting to systemd):
//     kubepods.slice/kubepods-pod<uid_>.slice                                         Guaranteed
//     kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice      Burstable
//     kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_>.slice    BestEffort
//   cgroupfs (plain directories):
//     kubepods/pod<uid>   kubepods/burstable/pod<uid>   kubepods/besteffort/pod<uid>
//
// With the kubelet's --cgroup-root (kind, some managed distributions) kubepods moves down one level:
// systemd `kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/...` (every nested slice
// repeats its parents' names), cgroupfs `kubelet/kubepods/...`. Detection covers both.
import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

import { WeftError } from '../../common/errors.js';

export type CgroupDriver = 'systemd' | 'cgroupfs';
export type QosClass = 'Guaranteed' | 'Burstable' | 'BestEffort';
export const QOS_CLASSES: readonly QosClass[] = ['Guaranteed', 'Burstable', 'BestEffort'];

export interface KubepodsLayout {
  driver: CgroupDriver;
  /** absolute path of the kubepods cgroup: the subtree that holds every pod, where capture attaches */
  kubepodsDir: string;
  /** systemd only: the kubepods slice's unit name without ".slice" ("kubepods", "kubelet-kubepods") */
  slicePrefix: string;
  /** the cgroup2 mount point kubepodsDir lies in (cgroup levels are counted from it) */
  cgroup2Mount: string;
}

// Pod UIDs are UUIDs (API pods) or 32 hex digits (static pods' config hash); anything else is refused so
// a UID can never walk out of the kubepods tree.
const POD_UID_RE = /^[0-9a-f][0-9a-f-]{0,63}$/i;

export function validatePodUid(uid: string): void {
  if (!POD_UID_RE.test(uid)) {
    throw new WeftError('WEFT_ERR_KUBEPODS_POD_UID', `pod UID "${uid}" is not a Kubernetes UID (hex digits and dashes); refusing to build a cgroup path from it`);
  }
}

/** The pod's cgroup, relative to the kubepods cgroup, for one driver and QoS class. */
export function podCgroupRelPath(layout: Pick<KubepodsLayout, 'driver' | 'slicePrefix'>, uid: string, qos: QosClass): string {
  validatePodUid(uid);
  if (layout.driver === 'systemd') {
    const u = uid.replace(/-/g, '_');
    const p = layout.slicePrefix;
    if (qos === 'Guaranteed') return `${p}-pod${u}.slice`;
    const q = qos.toLowerCase();
    return `${p}-${q}.slice/${p}-${q}-pod${u}.slice`;
  }
  if (qos === 'Guaranteed') return `pod${uid}`;
  return `${qos.toLowerCase()}/pod${uid}`;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function listDirs(p: string): string[] {
  try {
    return readdirSync(p, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

// A kubepods cgroup as named by the kubelet: systemd "<prefix>kubepods.slice", cgroupfs "kubepods".
function layoutAt(dir: string, cgroup2Mount: string): KubepodsLayout | undefined {
  const base = basename(dir);
  const m = /^((?:[a-zA-Z0-9_]+-)*kubepods)\.slice$/.exec(base);
  if (m && isDir(dir)) return { driver: 'systemd', kubepodsDir: dir, slicePrefix: m[1]!, cgroup2Mount };
  if (base === 'kubepods' && isDir(dir)) return { driver: 'cgroupfs', kubepodsDir: dir, slicePrefix: '', cgroup2Mount };
  return undefined;
}

/** The kubepods cgroups at or below `root`: the root itself, a direct child, or one under a custom --cgroup-root. */
export function findKubepods(root: string, cgroup2Mount: string = root): KubepodsLayout[] {
  const self = layoutAt(root, cgroup2Mount);
  if (self) return [self];
  const found: KubepodsLayout[] = [];
  for (const name of ['kubepods.slice', 'kubepods']) {
    const l = layoutAt(join(root, name), cgroup2Mount);
    if (l) found.push(l);
  }
  if (found.length > 0) return found;
  // kubelet --cgroup-root=/X: systemd X.slice/X-kubepods.slice, cgroupfs X/kubepods.
  for (const child of listDirs(root)) {
    const inner = child.endsWith('.slice') ? `${child.slice(0, -'.slice'.length)}-kubepods.slice` : 'kubepods';
    const l = layoutAt(join(root, child, inner), cgroup2Mount);
    if (l) found.push(l);
  }
  return found;
}

function podCount(l: KubepodsLayout): number {
  const isPod = l.driver === 'systemd' ? (n: string) => /-pod[0-9a-f_]+\.slice$/i.test(n) : (n: string) => /^pod[0-9a-f-]+$/i.test(n);
  let n = listDirs(l.kubepodsDir).filter(isPod).length;
  for (const q of ['burstable', 'besteffort']) {
    const qdir = l.driver === 'systemd' ? join(l.kubepodsDir, `${l.slicePrefix}-${q}.slice`) : join(l.kubepodsDir, q);
    n += listDirs(qdir).filter(isPod).length;
  }
  return n;
}

/**
 * Finds the kubepods cgroup among the cgroup2 roots (see cgroup2Roots). When several are present (a node
 * whose kubelet switched drivers keeps the old, empty tree), the one holding pods wins; two populated
 * trees are refused as ambiguous. Throws WEFT_ERR_KUBEPODS_NOT_FOUND when there is none: then the kubelet
 * does not run pods in this cgroup2 hierarchy (it uses cgroup v1, or --cgroup-root points elsewhere).
 */
export function detectKubepodsLayout(roots: { root: string; mount: string }[]): KubepodsLayout {
  const found = roots.flatMap(({ root, mount }) => findKubepods(root, mount));
  const unique = [...new Map(found.map((l) => [l.kubepodsDir, l])).values()];
  if (unique.length === 1) return unique[0]!;
  if (unique.length === 0) {
    throw new WeftError(
      'WEFT_ERR_KUBEPODS_NOT_FOUND',
      `no kubepods cgroup (systemd kubepods.slice or cgroupfs kubepods) under ${roots.map((r) => r.root).join(', ') || '(no cgroup2 mount)'}; ` +
        'the kubelet must run pods on cgroup v2 (cgroupDriver systemd or cgroupfs). If it uses a custom --cgroup-root, ' +
        "point the agent's --cgroup-root at the kubepods cgroup itself",
      { details: { searched: roots.map((r) => r.root) } },
    );
  }
  const populated = unique.filter((l) => podCount(l) > 0);
  if (populated.length === 1) return populated[0]!;
  throw new WeftError(
    'WEFT_ERR_KUBEPODS_AMBIGUOUS',
    `found ${unique.length} kubepods cgroups (${unique.map((l) => `${l.kubepodsDir} [${l.driver}]`).join(', ')}) and cannot tell which one the kubelet uses; ` +
      "point the agent's --cgroup-root at the right one",
    { details: { candidates: unique.map((l) => l.kubepodsDir) } },
  );
}
