// From repetitions to reported numbers: medians with min–max, latency added over the direct path (paired
// per repetition, since the runs are interleaved), ratios against nginx, and the targets.
import type { BenchPath, PathId } from './paths.js';
import type { Measurement, ScenarioId } from './scenarios.js';
import { PERCENTILE_KEYS, spread, type Spread } from './stats.js';
import type { Scope } from './topology.js';

export const pathKey = (id: PathId, scope: Scope): string => `${scope}/${id}`;

export interface ScenarioSummary {
  reps: number;
  failed: number;
  errors: string[];
  rps?: Spread;
  latencyUs: Record<string, Spread>;
  /** latency over the direct path of the same scope, paired per repetition */
  addedUs: Record<string, Spread>;
  cpuUsPerReq?: Spread;
  rssMaxKiB?: Spread;
  /** open loop: share of due requests that failed or were unanswered, % */
  errorPercent?: Spread;
}

/** runs[pathKey][scenario] = one Measurement per repetition (same index = same repetition) */
export type Runs = Record<string, Partial<Record<ScenarioId, Measurement[]>>>;

export function summarize(runs: Runs, paths: BenchPath[]): Record<string, Partial<Record<ScenarioId, ScenarioSummary>>> {
  const out: Record<string, Partial<Record<ScenarioId, ScenarioSummary>>> = {};
  for (const p of paths) {
    const key = pathKey(p.id, p.scope);
    const direct = runs[pathKey('direct', p.scope)] ?? {};
    out[key] = {};
    for (const [sid, ms] of Object.entries(runs[key] ?? {}) as [ScenarioId, Measurement[]][]) {
      const ok = ms.filter((m) => m.ok);
      const latencyUs: Record<string, Spread> = {};
      const addedUs: Record<string, Spread> = {};
      const keys = new Set(ok.flatMap((m) => Object.keys(m.latencyUs ?? {})).filter((k) => /^p\d+$/.test(k) || k === 'mean'));
      for (const k of keys) {
        latencyUs[k] = spread(ok.map((m) => m.latencyUs?.[k] ?? NaN));
        if (p.id !== 'direct') {
          const pairs = ms.map((m, i) => {
            const d = direct[sid]?.[i];
            return m.ok && d?.ok ? (m.latencyUs?.[k] ?? NaN) - (d.latencyUs?.[k] ?? NaN) : NaN;
          });
          addedUs[k] = spread(pairs);
        }
      }
      const s: ScenarioSummary = {
        reps: ms.length,
        failed: ms.length - ok.length,
        errors: [...new Set(ms.filter((m) => !m.ok).map((m) => m.error ?? 'failed'))],
        latencyUs,
        addedUs,
      };
      if (ok.length) s.rps = spread(ok.map((m) => m.rps ?? NaN));
      if (ok.some((m) => m.cpuUsPerReq !== undefined)) s.cpuUsPerReq = spread(ok.map((m) => m.cpuUsPerReq ?? NaN));
      if (ok.some((m) => m.errors && m.scheduled)) s.errorPercent = spread(ok.map((m) => (100 * (m.errors ?? 0)) / (m.scheduled || 1)));
      if (ok.some((m) => m.rssMaxKiB !== undefined)) s.rssMaxKiB = spread(ok.map((m) => m.rssMaxKiB ?? NaN));
      out[key]![sid] = s;
    }
  }
  return out;
}

export interface TargetResult {
  name: string;
  target: string;
  measured: string;
  /** null: could not be evaluated (a path is not available or failed) */
  met: boolean | null;
  why?: string;
}

export interface TargetInputs {
  summary: ReturnType<typeof summarize>;
  agentRssIdleKiB: Record<string, number>;
  capture?: { ebpfUsPerConnect?: number; iptablesUsPerConnect?: number; unavailable?: string };
  unavailable: Record<string, string>;
}

const fmt = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? 'n/a' : `${Math.round(x)} µs`);

function added(s: TargetInputs['summary'], key: string, sid: ScenarioId, pct: string): number | undefined {
  const v = s[key]?.[sid]?.addedUs[pct]?.median;
  return v !== undefined && Number.isFinite(v) ? v : undefined;
}

export function evaluateTargets(inp: TargetInputs): TargetResult[] {
  const s = inp.summary;
  const out: TargetResult[] = [];
  const unavailable = (...keys: string[]) => keys.map((k) => (inp.unavailable[k] ? `${k}: ${inp.unavailable[k]}` : undefined)).find(Boolean);
  // why a target could not be evaluated: a path missing, the scenario not run in this mode, or a failed run
  const why = (sid: ScenarioId, ...keys: string[]) => unavailable(...keys) ?? (keys.some((k) => !s[k]?.[sid]) ? `scenario ${sid} not run in this mode` : 'a run failed');

  for (const sid of ['ol4', 'ol16'] as ScenarioId[]) {
    const conns = sid === 'ol4' ? 4 : 16;
    for (const pct of ['p50', 'p99']) {
      const w = added(s, 'same-node/weft', sid, pct);
      const n = added(s, 'same-node/nginx', sid, pct);
      const ok = w !== undefined && n !== undefined;
      out.push({
        name: `plaintext same node, added ${pct} (1000 rps, ${conns} conns)`,
        target: '≤ nginx',
        measured: `Weft ${fmt(w)} vs nginx ${fmt(n)}`,
        met: ok ? w <= Math.max(n, 0) : null,
        ...(ok ? {} : { why: why(sid, 'same-node/weft', 'same-node/nginx') }),
      });
    }
    for (const pct of ['p90', 'p99']) {
      const w = added(s, 'cross-node/weft', sid, pct);
      const n = added(s, 'cross-node/nginx', sid, pct);
      const ok = w !== undefined && n !== undefined;
      out.push({
        name: `mTLS cross node (2 hops), added ${pct} (1000 rps, ${conns} conns)`,
        target: '≤ 2× nginx single hop',
        measured: `Weft ${fmt(w)} vs 2× nginx ${fmt(n === undefined ? undefined : 2 * n)}`,
        met: ok ? w <= 2 * Math.max(n, 0) : null,
        ...(ok ? {} : { why: why(sid, 'cross-node/weft', 'cross-node/nginx') }),
      });
    }
  }
  for (const sid of ['ol4', 'max'] as ScenarioId[]) {
    const w = s['same-node/weft']?.[sid]?.cpuUsPerReq?.median;
    const n = s['same-node/nginx']?.[sid]?.cpuUsPerReq?.median;
    const ok = w !== undefined && n !== undefined && Number.isFinite(w) && Number.isFinite(n);
    out.push({
      name: `CPU per request, L7 same node (${sid === 'ol4' ? '1000 rps' : 'max throughput'})`,
      target: '≤ 2× nginx',
      measured: ok ? `Weft ${w.toFixed(1)} µs vs nginx ${n.toFixed(1)} µs (${(w / n).toFixed(2)}×)` : 'n/a',
      met: ok ? w <= 2 * n : null,
      ...(ok ? {} : { why: why(sid, 'same-node/weft', 'same-node/nginx') }),
    });
  }
  const rss = Object.values(inp.agentRssIdleKiB);
  out.push({
    name: 'agent RSS idle',
    target: '≤ 60 MB',
    measured: rss.length ? rss.map((k) => `${(k / 1024).toFixed(1)} MB`).join(', ') : 'n/a',
    met: rss.length ? rss.every((k) => k <= 60 * 1024) : null,
    ...(rss.length ? {} : { why: inp.unavailable['same-node/weft'] ?? 'no agent running' }),
  });
  const c = inp.capture;
  const cok = c?.ebpfUsPerConnect !== undefined && c.iptablesUsPerConnect !== undefined;
  out.push({
    name: 'capture cost per connection',
    target: 'eBPF < iptables',
    measured: cok ? `eBPF ${c!.ebpfUsPerConnect!.toFixed(1)} µs vs iptables ${c!.iptablesUsPerConnect!.toFixed(1)} µs per connect (1 / connects per second)` : 'n/a',
    met: cok ? c!.ebpfUsPerConnect! < c!.iptablesUsPerConnect! : null,
    ...(cok ? {} : { why: c?.unavailable ?? 'not measured' }),
  });
  return out;
}
