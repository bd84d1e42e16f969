// Capture alone for the main bench: runs bench/capture-compare.ts (eBPF connect4 redirect vs iptables
// REDIRECT, its own lab of namespaces and cgroups) as a child process, so a kernel-side failure there
// cannot take the main run down, and folds its JSON into the report.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import type { CaptureCompareResult } from './capture-compare.js';
import type { CaptureReport } from './report.js';

export interface CaptureOutcome {
  report: CaptureReport;
  forTargets: { ebpfUsPerConnect?: number; iptablesUsPerConnect?: number; unavailable?: string };
  raw?: CaptureCompareResult;
}

function unavailable(why: string): CaptureOutcome {
  return { report: { unavailable: why }, forTargets: { unavailable: why } };
}

function run(file: string, args: string[], signal: AbortSignal | undefined, timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // SIGTERM lets it remove its lab; it never outlives us
    const kill = () => child.kill('SIGTERM');
    signal?.addEventListener('abort', kill, { once: true });
    const t = setTimeout(kill, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(t);
      resolve({ code: -1, out, err: err + e.message });
    });
    child.on('close', (code) => {
      clearTimeout(t);
      signal?.removeEventListener('abort', kill);
      resolve({ code, out, err });
    });
  });
}

export function captureOutcome(r: CaptureCompareResult): CaptureOutcome {
  const row = (method: string, x: CaptureCompareResult['ebpf']) => ({ method, connectsPerSecond: x.connectsPerSecond, cpuUsPerConnect: x.cpuUsPerConnect, p50Us: x.p50, p99Us: x.p99 });
  return {
    report: {
      rows: [row('eBPF connect4 redirect (Weft)', r.ebpf), row('iptables REDIRECT (sidecar style)', r.iptables)],
      source: `bench/capture-compare.ts: ${r.connections} connects per run, ${r.concurrency} at a time, ${r.reps} alternating runs each; CPU is the connecting process's user+system time per connect, where both hooks run`,
    },
    forTargets: { ebpfUsPerConnect: r.ebpf.cpuUsPerConnect.median, iptablesUsPerConnect: r.iptables.cpuUsPerConnect.median },
    raw: r,
  };
}

export async function runCapture(o: { root: string; quick: boolean; say: (l: string) => void; signal?: AbortSignal }): Promise<CaptureOutcome> {
  const file = join(o.root, 'dist', 'bench', 'capture-compare.js');
  if (!existsSync(file)) return unavailable('dist/bench/capture-compare.js is missing: build first (npm run build)');
  o.say('capture alone: eBPF connect4 vs iptables REDIRECT (bench/capture-compare.ts)');
  const args = ['--json', ...(o.quick ? ['--connections', '1000', '--reps', '1'] : ['--connections', '4000', '--reps', '3'])];
  const r = await run(file, args, o.signal, 300_000);
  if (r.code !== 0) return unavailable(`bench/capture-compare.ts exited ${r.code}: ${(r.err || r.out).trim().split('\n').slice(-3).join(' ')}`);
  const line = r.out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  try {
    return captureOutcome(JSON.parse(line ?? '') as CaptureCompareResult);
  } catch {
    return unavailable(`bench/capture-compare.ts printed no JSON result: ${r.out.slice(0, 200)}`);
  }
}
