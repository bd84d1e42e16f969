// Capture alone (eBPF connect4 redirect vs iptables REDIRECT to the same listener) is measured by the
// capture area's own benchmark, bench/capture.ts, which builds its own namespaces and cgroup. The runner
// calls it and folds its JSON into the report; when it is not in this build, the report says so.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import type { CaptureReport } from './report.js';
import { spread } from './stats.js';

export interface CaptureOutcome {
  report: CaptureReport;
  forTargets: { ebpfUsPerConnect?: number; iptablesUsPerConnect?: number; unavailable?: string };
}

/** One method's result as bench/capture.ts prints it (fields we use; others are kept in the raw JSON). */
interface CaptureMethodResult {
  connectsPerSecond?: number | number[];
  p50?: number;
  p99?: number;
}

function unavailable(why: string): CaptureOutcome {
  return { report: { unavailable: why }, forTargets: { unavailable: why } };
}

function run(file: string, args: string[], signal: AbortSignal | undefined, timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...(signal ? { signal } : {}) });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(t);
      resolve({ code: -1, out, err: err + e.message });
    });
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

/** Finds {ebpf, iptables} results in whatever shape the capture bench printed. */
export function interpretCapture(json: unknown): CaptureOutcome | undefined {
  const find = (o: unknown, name: string): CaptureMethodResult | undefined => {
    if (!o || typeof o !== 'object') return undefined;
    for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
      if (k.toLowerCase().includes(name) && v && typeof v === 'object' && ('connectsPerSecond' in v || 'cps' in v)) {
        const r = v as CaptureMethodResult & { cps?: number | number[] };
        return { ...r, connectsPerSecond: r.connectsPerSecond ?? r.cps };
      }
      const deeper = find(v, name);
      if (deeper) return deeper;
    }
    return undefined;
  };
  const rows = [];
  const per: Record<string, number> = {};
  for (const [name, label] of [
    ['ebpf', 'eBPF connect4 redirect'],
    ['iptables', 'iptables REDIRECT'],
  ] as const) {
    const r = find(json, name);
    if (!r?.connectsPerSecond) return undefined;
    const s = spread(Array.isArray(r.connectsPerSecond) ? r.connectsPerSecond : [r.connectsPerSecond]);
    per[name] = 1e6 / s.median;
    rows.push({ method: label, connectsPerSecond: s, usPerConnect: 1e6 / s.median, ...(r.p50 !== undefined ? { p50Us: r.p50 } : {}), ...(r.p99 !== undefined ? { p99Us: r.p99 } : {}) });
  }
  return { report: { rows, source: 'measured by bench/capture.ts' }, forTargets: { ebpfUsPerConnect: per.ebpf!, iptablesUsPerConnect: per.iptables! } };
}

export async function runCapture(o: { root: string; quick: boolean; say: (l: string) => void; signal?: AbortSignal }): Promise<CaptureOutcome> {
  const file = join(o.root, 'dist', 'bench', 'capture.js');
  if (!existsSync(file)) return unavailable('bench/capture.ts (the capture area\'s benchmark) is not in this build yet');
  o.say('capture alone: running bench/capture.ts');
  const r = await run(file, ['--json', ...(o.quick ? ['--quick'] : [])], o.signal, 180_000);
  if (r.code !== 0) return unavailable(`bench/capture.ts exited ${r.code}: ${(r.err || r.out).trim().split('\n').slice(-3).join(' ')}`);
  const line = r.out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  let json: unknown;
  try {
    json = JSON.parse(line ?? r.out);
  } catch {
    return unavailable('bench/capture.ts printed no JSON result');
  }
  return interpretCapture(json) ?? unavailable(`bench/capture.ts printed a result without eBPF and iptables connect rates: ${JSON.stringify(json).slice(0, 200)}`);
}
