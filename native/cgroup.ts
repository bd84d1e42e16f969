// cgroup v2 helpers: where the unified hierarchy is mounted, the id of a cgroup, and creating/removing
// the cgroups Weft owns (sandbox pods, tests). Pure file-system operations, no BPF.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';

import { CgroupError } from './errors.js';

export interface MountEntry {
  source: string;
  target: string;
  fstype: string;
  options: string;
}

/** /proc/mounts, with the octal escapes (\040 for space) decoded. */
export function readMounts(text = readFileSync('/proc/mounts', 'utf8')): MountEntry[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [source = '', target = '', fstype = '', options = ''] = line.split(' ');
      return { source: unescape(source), target: unescape(target), fstype, options };
    });
}

/**
 * Mount point of the cgroup v2 (unified) hierarchy: /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts.
 * With `containing` (a cgroup path such as capture's attach point), the cgroup2 mount that holds it: the
 * longest mount point that is a prefix of it, the later line on a tie (a mount over another shadows it, as
 * the agent's container mounts the node's tree over its own /sys/fs/cgroup). When none holds it, or without
 * `containing`, the first cgroup2 mount, so callers' "not inside the cgroup v2 hierarchy" checks name it.
 */
export function cgroup2Mount(mounts: MountEntry[] = readMounts(), containing?: string): string {
  const v2 = mounts.filter((e) => e.fstype === 'cgroup2');
  if (v2.length === 0) {
    throw new CgroupError('no cgroup v2 hierarchy is mounted (no cgroup2 line in /proc/mounts); boot with systemd.unified_cgroup_hierarchy=1 or mount one: mount -t cgroup2 none /sys/fs/cgroup/unified');
  }
  if (containing !== undefined) {
    let best: string | undefined;
    for (const e of v2) {
      if (isInsideCgroup2(containing, e.target) && (best === undefined || resolve(e.target).length >= resolve(best).length)) best = e.target;
    }
    if (best !== undefined) return best;
  }
  return v2[0]!.target;
}

/** True when `path` is the machine's root cgroup (the mount point itself). */
export function isRootCgroup(path: string, mount = cgroup2Mount(readMounts(), path)): boolean {
  return resolve(path) === resolve(mount);
}

/** Whether `path` lies inside the cgroup v2 hierarchy mounted at `mount`. */
export function isInsideCgroup2(path: string, mount = cgroup2Mount(readMounts(), path)): boolean {
  const rel = relative(resolve(mount), resolve(path));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** The cgroup v2 id of a cgroup directory: its inode number (what bpf_get_current_cgroup_id returns). */
export function cgroupId(path: string): bigint {
  try {
    return statSync(path, { bigint: true }).ino;
  } catch (e) {
    throw new CgroupError(`cannot stat cgroup ${path}; does the pod's cgroup exist?`, { cause: e, errno: (e as { errno?: number }).errno });
  }
}

/** Create a cgroup (and parents) under the v2 hierarchy; returns its id. Refuses paths outside it. */
export function createCgroup(path: string, mount = cgroup2Mount(readMounts(), path)): bigint {
  if (!isInsideCgroup2(path, mount) || isRootCgroup(path, mount)) {
    throw new CgroupError(`refusing to create cgroup ${path}: it is not below the cgroup v2 mount ${mount}`);
  }
  try {
    mkdirSync(path, { recursive: true });
  } catch (e) {
    throw new CgroupError(`cannot create cgroup ${path}`, { cause: e, errno: (e as { errno?: number }).errno });
  }
  return cgroupId(path);
}

/** Move a process into a cgroup. */
export function joinCgroup(path: string, pid: number): void {
  try {
    writeFileSync(`${path}/cgroup.procs`, `${pid}\n`);
  } catch (e) {
    throw new CgroupError(`cannot move pid ${pid} into cgroup ${path}`, { cause: e, errno: (e as { errno?: number }).errno });
  }
}

/** Pids currently in a cgroup (not its children). */
export function cgroupPids(path: string): number[] {
  try {
    return readFileSync(`${path}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Remove a cgroup and its child cgroups, deepest first. A cgroup still holding processes cannot be removed
 * (EBUSY): the error says so. Returns false if it did not exist.
 */
export function removeCgroup(path: string, mount = cgroup2Mount(readMounts(), path)): boolean {
  if (!isInsideCgroup2(path, mount) || isRootCgroup(path, mount)) {
    throw new CgroupError(`refusing to remove cgroup ${path}: it is not below the cgroup v2 mount ${mount}`);
  }
  if (!existsSync(path)) return false;
  for (const child of childCgroups(path)) removeCgroup(child, mount);
  try {
    rmdirSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    const hint = code === 'EBUSY' ? `; processes still in it: ${cgroupPids(path).join(', ') || 'none listed (a zombie or a dying task)'}` : '';
    throw new CgroupError(`cannot remove cgroup ${path}${hint}`, { cause: e, errno: (e as { errno?: number }).errno });
  }
  return true;
}

function childCgroups(path: string): string[] {
  // A cgroup directory's subdirectories are exactly its child cgroups (control files are plain files).
  const out: string[] = [];
  try {
    for (const name of readdirSync(path)) {
      const p = `${path}/${name}`;
      try {
        if (statSync(p).isDirectory()) out.push(p);
      } catch {
        /* raced with removal */
      }
    }
  } catch {
    /* gone */
  }
  return out;
}
