// The cgroup v2 side of the sandbox: find the cgroup2 mount, create the sandbox's subtree, and kill and
// remove it. Everything the sandbox runs lives under <mount>/weft-sandbox-<id>, so one write to its
// cgroup.kill ends every process it started, also after the `up` process itself was killed.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { SandboxHostError } from '../errors.js';

/** The cgroup2 mount point from /proc/mounts (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid hosts). */
export function findCgroup2Mount(mounts = readFileSync('/proc/mounts', 'utf8')): string {
  for (const line of mounts.split('\n')) {
    const f = line.split(' ');
    if (f[2] === 'cgroup2' && f[1]) return f[1].replace(/\\040/g, ' ');
  }
  throw new SandboxHostError('no cgroup2 filesystem is mounted (see /proc/mounts); the sandbox needs cgroup v2 for its pods');
}

export function makeCgroup(path: string): void {
  mkdirSync(path, { recursive: true });
}

/** Moves `pid` into the cgroup at `path`. */
export function joinCgroup(path: string, pid: number): void {
  writeFileSync(join(path, 'cgroup.procs'), `${pid}\n`);
}

export function cgroupPids(path: string): number[] {
  try {
    return readFileSync(join(path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Every pid in the subtree. */
export function subtreePids(path: string): number[] {
  const out = cgroupPids(path);
  for (const child of childCgroups(path)) out.push(...subtreePids(child));
  return out;
}

function childCgroups(path: string): string[] {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(path, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.filter((e) => e.isDirectory()).map((e) => join(path, e.name));
}

/**
 * SIGKILLs every process in the subtree (cgroup.kill, Linux 5.14+; else kill(2) pid by pid) and removes
 * the cgroups bottom-up, waiting for the dying processes to leave. Idempotent; a missing tree is fine.
 */
export async function destroyCgroupTree(path: string, timeoutMs = 5000): Promise<void> {
  if (!existsSync(path)) return;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    killTree(path);
    if (removeTree(path)) return;
    if (Date.now() > deadline) {
      throw new SandboxHostError(`could not remove cgroup ${path}: processes ${subtreePids(path).join(', ') || '(none)'} are still in it`);
    }
    await sleep(20);
  }
}

function killTree(path: string): void {
  try {
    writeFileSync(join(path, 'cgroup.kill'), '1');
    return;
  } catch {
    // older kernels: no cgroup.kill
  }
  for (const pid of subtreePids(path)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** rmdir bottom-up; true when the whole tree is gone. */
function removeTree(path: string): boolean {
  let ok = true;
  for (const child of childCgroups(path)) ok = removeTree(child) && ok;
  if (!ok) return false;
  try {
    rmdirSync(path);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
}
