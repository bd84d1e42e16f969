// Capture alone for the main bench: runs the capture area's bench/capture.ts (direct vs eBPF connect4
// redirect vs iptables, to the same listener, interleaved rounds, its own lab of namespaces and cgroups)
// as a child process, so a kernel-side failure there cannot take the main run down, and folds its
// one-line JSON into the report.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import type { CaptureReport } from './report.js';
import { spread } from './stats.js';

export interface CaptureOutcome {
  report: CaptureReport;
  forTargets: { ebpfUsPerConnect?: number; iptablesUsPerConnect?: number; unavailable?: string };
  raw?: unknown;
}

/** One method as bench/capture.ts prints it. */
interface MethodResult {
  connectsPerSecond: number[];
  p50: number;
  p99: number;
  failed: number;
  method?: string;
}

interface CaptureJson {
  connections: number;
  concurrency: number;
  rounds: number;
  direct?: MethodResult;
  ebpf: MethodResult;
  iptables: MethodResult;
  lookup?: { nsPerCall: number };
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
    // SIGTERM lets it remove its lab
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

export function captureOutcome(r: CaptureJson): CaptureOutcome {
  const failed = [r.ebpf, r.iptables].reduce((a, m) => a + (m?.failed ?? 0), 0);
  if (!r.ebpf?.connectsPerSecond?.length || !r.iptables?.connectsPerSecond?.length) return unavailable('bench/capture.ts printed no eBPF/iptables connect rates');
  if (failed) return unavailable(`bench/capture.ts: ${failed} connects failed (capture did not redirect them)`);
  const row = (method: string, m: MethodResult) => {
    const cps = spread(m.connectsPerSecond);
    return { method, connectsPerSecond: cps, usPerConnect: 1e6 / cps.median, p50Us: m.p50, p99Us: m.p99 };
  };
  const rows = [
    ...(r.direct ? [row('direct, no capture (reference)', r.direct)] : []),
    row('eBPF connect4 redirect (Weft; the listener also looks each connection up)', r.ebpf),
    row(`iptables (${r.iptables.method ?? 'nat OUTPUT in the pod'})`, r.iptables),
  ];
  const e = rows[rows.length - 2]!;
  const i = rows[rows.length - 1]!;
  return {
    report: {
      rows,
      source: `bench/capture.ts: ${r.connections} connects per round, ${r.concurrency} at a time, ${r.rounds} interleaved rounds${r.lookup ? `; RedirectManager.lookup ${r.lookup.nsPerCall} ns per call` : ''}`,
    },
    forTargets: { ebpfUsPerConnect: e.usPerConnect, iptablesUsPerConnect: i.usPerConnect },
    raw: r,
  };
}

export async function runCapture(o: { root: string; quick: boolean; say: (l: string) => void; signal?: AbortSignal }): Promise<CaptureOutcome> {
  const file = join(o.root, 'dist', 'bench', 'capture.js');
  if (!existsSync(file)) return unavailable("bench/capture.ts (the capture area's benchmark) is not in this build");
  o.say('capture alone: direct vs eBPF connect4 vs iptables (bench/capture.ts)');
  const r = await run(file, ['--json', ...(o.quick ? ['--quick'] : [])], o.signal, 300_000);
  if (r.code !== 0) return unavailable(`bench/capture.ts exited ${r.code}: ${(r.err || r.out).trim().split('\n').slice(-3).join(' ')}`);
  const line = r.out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  try {
    return captureOutcome(JSON.parse(line ?? '') as CaptureJson);
  } catch {
    return unavailable(`bench/capture.ts printed no JSON result: ${r.out.slice(0, 200)}`);
  }
}
