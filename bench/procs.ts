// What the bench reads about the processes it measures, straight from /proc: the process tree (nginx's
// master and worker), CPU time, resident memory, and CPU pinning with taskset.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] | undefined {
  const s = readText(`/proc/${pid}/stat`);
  if (!s) return undefined;
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
}

/** `pid` and all its descendants that are alive now. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (!f) continue;
    const ppid = Number(f[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    if (!statFields(p)) return;
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    clockTicks = Number(r.stdout.trim()) || 100;
  }
  return clockTicks;
}

export interface CpuSample {
  /** utime+stime from /proc/<pid>/stat, in µs (clock-tick resolution, usually 10 ms) */
  statUs: number;
  /** sum of the threads' on-CPU time from /proc/<pid>/task/<tid>/schedstat, in µs (ns resolution) */
  schedUs: number;
}

/** CPU time used so far by `pids` (all their threads). */
export function cpuTime(pids: number[]): CpuSample {
  let ticks = 0;
  let ns = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    if (f) ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15 of stat)
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      const s = readText(`/proc/${pid}/task/${tid}/schedstat`);
      if (s) ns += Number(s.split(' ')[0]);
    }
  }
  return { statUs: (ticks * 1e6) / ticksPerSecond(), schedUs: ns / 1000 };
}

/** Resident set size of `pids` together, in KiB. */
export function rssKiB(pids: number[]): number {
  let kb = 0;
  for (const pid of pids) {
    const m = /VmRSS:\s+(\d+) kB/.exec(readText(`/proc/${pid}/status`) ?? '');
    if (m) kb += Number(m[1]);
  }
  return kb;
}

/** Pins every thread of every process in `pids` to `cpu`. Returns the pids that could not be pinned. */
export function pin(pids: number[], cpu: number): number[] {
  const failed: number[] = [];
  for (const pid of pids) {
    const r = spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { encoding: 'utf8' });
    if (r.status !== 0) failed.push(pid);
  }
  return failed;
}

export function cpuCount(): number {
  return (readText('/proc/cpuinfo') ?? '').split('\n').filter((l) => l.startsWith('processor')).length || 1;
}

/** Samples the RSS of a process tree every `everyMs` until stopped; returns the maximum in KiB. */
export function rssSampler(rootPids: () => number[], everyMs = 200): { stop(): number } {
  let max = 0;
  const sample = () => {
    const pids = rootPids().flatMap((p) => processTree(p));
    max = Math.max(max, rssKiB(pids));
  };
  sample();
  const t = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(t);
      sample();
      return max;
    },
  };
}

export function killTree(pid: number, signal: NodeJS.Signals = 'SIGTERM'): void {
  for (const p of processTree(pid).reverse()) {
    try {
      process.kill(p, signal);
    } catch {
      // already gone
    }
  }
}
