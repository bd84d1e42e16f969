// Tears a sandbox down: idempotent, and complete also after a crashed or kill -9'ed `up`. It works from
// the state file when there is one and from the sandbox's name prefixes when there is not: every
// process (cgroup.kill on the sandbox's cgroup subtree, then anything still inside its namespaces),
// every netns (their veths and bridges go with them), the pods' namespace mounts, bpffs pins, the run dir.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { releaseBpffs } from '../native/preflight.js';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { cgroupRootFor, netnsPrefix } from './plan.js';
import { destroyCgroupTree, findCgroup2Mount, subtreePids } from './host/cgroup.js';
import { run } from './host/run.js';
import { deleteNetns } from './network.js';
import { removeNamespaceDir } from './pods.js';
import { pidAlive, readState, RUN_BASE, runDirFor, writeState } from './state.js';

export const BPFFS_ROOT = '/sys/fs/bpf';

export function bpffsDirFor(id: string): string {
  return join(BPFFS_ROOT, `weft-sandbox-${id}`);
}

export interface DownResult {
  /** false when there was nothing to remove */
  found: boolean;
  removed: { netns: number; processes: number };
}

/** Our netns names: the plan's, plus anything under /run/netns with this sandbox's prefix. */
export function sandboxNetns(id: string, planned: string[] = []): string[] {
  const prefix = netnsPrefix(id);
  let listed: string[] = [];
  try {
    listed = readdirSync('/run/netns').filter((n) => n.startsWith(prefix));
  } catch {
    // no /run/netns: nothing listed
  }
  return [...new Set([...planned, ...listed])];
}

export interface DownOptions {
  runBase?: string;
  /** the pid of the process calling down (a foreground `up` cleaning up after itself): never signalled */
  self?: number;
}

export async function down(id: string, opts: DownOptions = {}): Promise<DownResult> {
  const runDir = runDirFor(id, opts.runBase ?? RUN_BASE);
  const state = readState(runDir);
  const cgroupRoot = state?.plan.cgroupRoot ?? cgroupRootFor(findCgroup2Mount(), id);
  const netns = sandboxNetns(id, state ? [state.plan.underlay.netns, state.plan.controller.netns, ...state.plan.nodes.map((n) => n.netns), ...state.plan.pods.map((p) => p.netns)] : []);
  const bpffs = state?.plan.paths.bpffsDir ?? bpffsDirFor(id);
  const found = !!state || netns.length > 0 || existsSync(cgroupRoot) || existsSync(runDir) || existsSync(bpffs);
  const result: DownResult = { found, removed: { netns: 0, processes: 0 } };
  if (!found) return result;

  // A foreground `up` still running elsewhere cleans up on SIGTERM; let it, then sweep after it.
  if (state && state.pid !== opts.self && state.pid !== process.pid && pidAlive(state.pid) && isUpProcess(state.pid)) {
    try {
      process.kill(state.pid, 'SIGTERM');
    } catch {
      // gone
    }
    for (let i = 0; i < 100 && pidAlive(state.pid); i++) await sleep(50);
  }
  if (state && state.phase !== 'stopping' && existsSync(runDir)) writeState(runDir, { ...state, phase: 'stopping' });

  // Let the agents detach their programs cleanly, then kill whatever is left.
  const pids = subtreePids(cgroupRoot);
  result.removed.processes = pids.length;
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
  for (let i = 0; i < 20 && subtreePids(cgroupRoot).length > 0; i++) await sleep(25);
  await destroyCgroupTree(cgroupRoot);

  // Anything that entered one of our namespaces without joining our cgroups (an interrupted spawn).
  for (const n of netns) {
    const r = await run('ip', ['netns', 'pids', n], { allowFail: true });
    for (const pid of r.stdout.split('\n').filter(Boolean).map(Number)) {
      if (pid === process.pid) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  await deleteNetns(netns);
  result.removed.netns = netns.length;

  await removeNamespaceDir(join(runDir, 'ns'));
  rmSync(bpffs, { recursive: true, force: true });
  rmSync(runDir, { recursive: true, force: true });
  // the agents' preflight mounted bpffs when the machine had none: unmount it once nothing of anyone's is pinned
  releaseBpffs();
  return result;
}

/** Guards against pid reuse: is `pid` still a `weft sandbox up`? */
function isUpProcess(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes('sandbox') && argv.includes('up');
  } catch {
    return false;
  }
}
