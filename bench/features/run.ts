// Runs the per-feature cost rows: for each registered feature, on the Weft path of its scope, alternately
// without and with its objects applied (apply → wait until the agents run the new config version → measure
// → delete → wait), so both sides share the machine's moments. Reports medians per side and the difference.
import { APPLY_PATH, DELETE_PATH } from '../../controller/api/paths.js';
import { parseObjects } from '../../controller/sources/yaml-objects.js';
import { sandboxTarget } from '../../cli/target.js';
import type { BenchPath } from '../paths.js';
import { measure, SCENARIO_LABELS, type Measurement, type ScenarioEnv, type ScenarioId } from '../scenarios.js';
import { spread, type Spread } from '../stats.js';
import { SERVICE_PORT, UPSTREAM, type Scope, type Topology } from '../topology.js';
import type { FeatureContext, FeatureScenario } from './types.js';

export interface SideSummary {
  cpuUsPerReq?: Spread;
  rps?: Spread;
  p50Us?: Spread;
  p99Us?: Spread;
  failed: number;
  errors: string[];
}

export interface FeatureResult {
  id: string;
  label: string;
  owner: string;
  scope: Scope;
  /** why the feature could not be measured (objects refused, agents never took the config, no Weft path) */
  error?: string;
  rows: { scenario: ScenarioId; without: SideSummary; with: SideSummary; runs: { without: Measurement[]; with: Measurement[] } }[];
}

export function featureContext(topo: Topology, scope: Scope, trustDomain = 'cluster.local'): FeatureContext {
  const app = topo.servers[scope].pod.name; // bench/topology.ts: pod server-a/-b, label app and Service of the same name
  return {
    namespace: 'bench',
    trustDomain,
    clientPrincipal: `${trustDomain}/ns/bench/sa/client`,
    server: { app, service: app, httpPort: SERVICE_PORT.http, h2cPort: SERVICE_PORT.h2c, tcpPort: SERVICE_PORT.tcp, targetHttpPort: UPSTREAM.http },
  };
}

async function post(url: string, body: unknown): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) {
    const b = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string } };
    throw new Error(b.error ? `${b.error.code}: ${b.error.message}` : `HTTP ${res.status}`);
  }
}

async function configVersion(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const m = /^weft_config_version(?:\{[^}]*\})? (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Applies (or deletes) the objects and waits until every agent of the scope runs a newer config version. */
async function change(topo: Topology, scope: Scope, verb: 'apply' | 'delete', items: unknown[]): Promise<void> {
  const target = sandboxTarget(topo.state);
  const agents = target.agents.filter((a) => a.metrics && (scope === 'cross-node' || a.node === 'node-1'));
  const before = await Promise.all(agents.map((a) => configVersion(a.metrics!)));
  await post(target.controller + (verb === 'apply' ? APPLY_PATH : DELETE_PATH), { apiVersion: 'v1', kind: 'List', items });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const now = await Promise.all(agents.map((a) => configVersion(a.metrics!)));
    if (now.every((v, i) => v > before[i]!)) return;
    if (Date.now() > deadline) throw new Error(`after ${verb}, the agents still run config version ${now.join('/')} (was ${before.join('/')}) after 30 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function side(ms: Measurement[]): SideSummary {
  const ok = ms.filter((m) => m.ok);
  const s: SideSummary = { failed: ms.length - ok.length, errors: [...new Set(ms.map((m) => m.error).filter((e): e is string => !!e))] };
  if (ok.some((m) => m.cpuUsPerReq !== undefined)) s.cpuUsPerReq = spread(ok.map((m) => m.cpuUsPerReq ?? NaN));
  if (ok.length) s.rps = spread(ok.map((m) => m.rps ?? NaN));
  if (ok.some((m) => m.latencyUs?.p50 !== undefined)) {
    s.p50Us = spread(ok.map((m) => m.latencyUs?.p50 ?? NaN));
    s.p99Us = spread(ok.map((m) => m.latencyUs?.p99 ?? NaN));
  }
  return s;
}

export interface FeatureRunOptions {
  features: FeatureScenario[];
  env: ScenarioEnv;
  paths: BenchPath[];
  reps: number;
  say: (l: string) => void;
  checkAbort: () => void;
}

export async function runFeatures(o: FeatureRunOptions): Promise<FeatureResult[]> {
  const out: FeatureResult[] = [];
  for (const f of o.features) {
    const scope = f.scope ?? 'same-node';
    const scenarios = f.scenarios ?? (['ol4', 'max'] as ScenarioId[]);
    const result: FeatureResult = { id: f.id, label: f.label, owner: f.owner, scope, rows: [] };
    out.push(result);
    const path = o.paths.find((p) => p.id === 'weft' && p.scope === scope);
    if (!path || path.unavailable) {
      result.error = `the Weft ${scope} path is not available${path?.unavailable ? `: ${path.unavailable}` : ''}`;
      continue;
    }
    let items: unknown[];
    try {
      items = parseObjects(f.objects(featureContext(o.env.topo, scope)), `bench/features (${f.id})`);
    } catch (e) {
      result.error = `its objects do not parse: ${(e as Error).message}`;
      continue;
    }
    const runs = Object.fromEntries(scenarios.map((s) => [s, { without: [] as Measurement[], with: [] as Measurement[] }])) as Record<ScenarioId, { without: Measurement[]; with: Measurement[] }>;
    let applied = false;
    let stopDuring: (() => Promise<void>) | undefined;
    try {
      for (let rep = 0; rep < o.reps; rep++) {
        for (const sid of scenarios) {
          o.checkAbort();
          runs[sid].without.push(await measure(o.env, path, sid));
        }
        // a feature without objects (only `during`) leaves the config alone: no version to wait for
        if (items.length) await change(o.env.topo, scope, 'apply', items);
        applied = items.length > 0;
        stopDuring = await f.during?.({ ...featureContext(o.env.topo, scope), sandboxId: o.env.topo.state.id });
        for (const sid of scenarios) {
          o.checkAbort();
          const m = await measure(o.env, path, sid);
          runs[sid].with.push(m);
          o.say(`feature ${f.id} rep ${rep + 1}/${o.reps} ${sid}: without ${fmtM(runs[sid].without.at(-1)!)} | with ${fmtM(m)}`);
        }
        await stopDuring?.();
        stopDuring = undefined;
        if (items.length) await change(o.env.topo, scope, 'delete', items);
        applied = false;
      }
    } catch (e) {
      result.error = (e as Error).message;
      o.say(`feature ${f.id}: ${result.error}`);
      await stopDuring?.().catch(() => {});
      if (applied) await change(o.env.topo, scope, 'delete', items).catch(() => {});
      if ((e as Error).message === 'interrupted') throw e;
    }
    result.rows = scenarios.map((sid) => ({ scenario: sid, without: side(runs[sid].without), with: side(runs[sid].with), runs: runs[sid] }));
  }
  return out;
}

function fmtM(m: Measurement): string {
  return m.ok ? `${m.rps} rps, p50 ${m.latencyUs?.p50 ?? '-'} µs${m.cpuUsPerReq !== undefined ? `, ${m.cpuUsPerReq} µs CPU/req` : ''}` : `FAILED: ${m.error}`;
}

const f0 = (s: Spread | undefined, d = 0) => (s && Number.isFinite(s.median) ? s.median.toFixed(d) : 'n/a');
function delta(a: Spread | undefined, b: Spread | undefined, d = 0, unit = ''): string {
  if (!a || !b || !Number.isFinite(a.median) || !Number.isFinite(b.median)) return `${f0(a, d)} → ${f0(b, d)}`;
  const diff = b.median - a.median;
  const pct = a.median !== 0 ? ` (${diff >= 0 ? '+' : ''}${((100 * diff) / a.median).toFixed(0)}%)` : '';
  return `${a.median.toFixed(d)} → ${b.median.toFixed(d)}${unit}${pct}`;
}

/** The README table: one row per feature and scenario. */
export function featureTable(results: FeatureResult[], reps: number): string[] {
  const lines = [
    '#### Cost per feature (same run, Weft path, without → with the feature\'s objects applied, or its operator command running)',
    '',
    `Medians of ${reps} alternating repetitions (without, apply, with, delete); latency is absolute (not over direct), so its difference is what the feature adds. Scenario files: \`bench/features/\`.`,
    '',
    '| feature | owner | scope | scenario | proxy CPU µs/req | p50 µs | p99 µs | req/s |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of results) {
    if (r.error && !r.rows.some((x) => x.with.rps)) {
      lines.push(`| ${r.label} (\`${r.id}\`) | ${r.owner} | ${r.scope} | — | not measured: ${r.error.slice(0, 200)} | | | |`);
      continue;
    }
    for (const row of r.rows) {
      const failed = row.with.failed || row.without.failed ? ` (failed runs: ${row.without.failed} without, ${row.with.failed} with)` : '';
      const errs = row.with.errors.length ? `; with: ${row.with.errors[0]!.slice(0, 100)}` : '';
      lines.push(
        `| ${r.label} (\`${r.id}\`)${failed}${errs} | ${r.owner} | ${r.scope} | ${SCENARIO_LABELS[row.scenario]} | ${delta(row.without.cpuUsPerReq, row.with.cpuUsPerReq, 1)} | ${delta(row.without.p50Us, row.with.p50Us)} | ${delta(row.without.p99Us, row.with.p99Us)} | ${delta(row.without.rps, row.with.rps)} |`,
      );
    }
  }
  return [...lines, ''];
}
