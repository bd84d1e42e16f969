// From repetitions to reported numbers: medians with min–max, latency added over the direct path (paired
// per repetition, since the runs are interleaved) and ratios against nginx.
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

// The targets live in targets.ts (issue 10's); re-exported for the callers that import them from here.
export { evaluateTargets, type TargetInputs, type TargetResult } from './targets.js';
