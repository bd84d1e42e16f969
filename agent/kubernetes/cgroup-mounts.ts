// Where the node's cgroup v2 hierarchy is, read from the mount table (never hardcoded: it is
// /sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid one, and /host/sys/fs/cgroup inside
// the agent's container, where the DaemonSet mounts the node's tree). Pure: the caller passes the text of
// /proc/mounts, so tests feed it fixtures.
import { WeftError } from '../../common/errors.js';

export interface MountEntry {
  source: string;
  mountPoint: string;
  fsType: string;
  options: string[];
}

// /proc/mounts escapes space, tab, newline and backslash in paths as octal (\040 ...).
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMounts(procMounts: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of procMounts.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    out.push({ source: unescapeMountField(f[0]!), mountPoint: unescapeMountField(f[1]!), fsType: f[2]!, options: f[3]!.split(',') });
  }
  return out;
}

function within(path: string, dir: string): boolean {
  const d = dir.endsWith('/') && dir !== '/' ? dir.slice(0, -1) : dir;
  return path === d || d === '/' || path.startsWith(d + '/');
}

/**
 * The cgroup2 mount points to look for pods in. With `hint` (the `--cgroup-root` flag), only mounts at or
 * under the hint, or the one holding it, count; the hint itself is returned when it lies inside a cgroup2
 * mount (an operator may point straight at the kubepods cgroup).
 *
 * Throws WEFT_ERR_CGROUP_V1_ONLY when only cgroup v1 hierarchies are mounted there (Weft's capture is
 * cgroup v2 eBPF: there is nothing to attach to), WEFT_ERR_CGROUP_NOT_MOUNTED when there is no cgroup
 * filesystem at all.
 */
export function cgroup2Roots(mounts: MountEntry[], hint?: string): string[] {
  const v2 = mounts.filter((m) => m.fsType === 'cgroup2');
  const v1 = mounts.filter((m) => m.fsType === 'cgroup');
  let roots: string[];
  if (hint === undefined) {
    roots = v2.map((m) => m.mountPoint);
  } else {
    const holding = v2.filter((m) => within(hint, m.mountPoint));
    const under = v2.filter((m) => within(m.mountPoint, hint) && !holding.includes(m));
    roots = [...(holding.length > 0 ? [hint] : []), ...under.map((m) => m.mountPoint)];
  }
  roots = [...new Set(roots)];
  if (roots.length > 0) return roots;

  const scope = hint === undefined ? 'on this node' : `at or under ${hint}`;
  const v1Here = hint === undefined ? v1 : v1.filter((m) => within(m.mountPoint, hint) || within(hint, m.mountPoint));
  if (v1Here.length > 0) {
    throw new WeftError(
      'WEFT_ERR_CGROUP_V1_ONLY',
      `only cgroup v1 hierarchies are mounted ${scope} (${v1Here.map((m) => m.mountPoint).slice(0, 3).join(', ')}${v1Here.length > 3 ? ', ...' : ''}); ` +
        'Weft captures traffic with cgroup v2 eBPF programs and cannot run on a cgroup-v1-only node. ' +
        'Boot the node with cgroup v2 (systemd.unified_cgroup_hierarchy=1, the default on current distributions) and set the kubelet and container runtime to it',
      { details: { v1Mounts: v1Here.map((m) => m.mountPoint) } },
    );
  }
  throw new WeftError(
    'WEFT_ERR_CGROUP_NOT_MOUNTED',
    `no cgroup filesystem is mounted ${scope}; ` +
      (hint === undefined ? 'mount cgroup2 (mount -t cgroup2 none /sys/fs/cgroup)' : `check --cgroup-root=${hint} and that the DaemonSet mounts the node's /sys/fs/cgroup there`),
  );
}
