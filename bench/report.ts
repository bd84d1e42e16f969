// The markdown the bench writes into bench/README.md between the results markers: machine, versions, date,
// the targets with met / not met, then per-scope latency, CPU, memory and throughput tables.
import type { Machine } from './machine.js';
import type { AgentProfile } from './profile-run.js';
import type { ScenarioId } from './scenarios.js';
import { SCENARIO_LABELS } from './scenarios.js';
import type { Spread } from './stats.js';
import { pathKey, type ScenarioSummary, type TargetResult } from './summary.js';
import { featureTable, type FeatureResult } from './features/run.js';
import type { Scope } from './topology.js';

export const RESULTS_START = '<!-- bench-results:start -->';
export const RESULTS_END = '<!-- bench-results:end -->';

export interface ReportInput {
  date: string;
  mode: 'full' | 'quick';
  durationSeconds: number;
  machine: Machine;
  method: { reps: number; seconds: number; warmupSeconds: number; rate: number; proxyCpu: number; loadCpu: number };
  paths: { key: string; label: string; scope: Scope; id: string; unavailable?: string; unsupported?: Partial<Record<ScenarioId, string>> }[];
  summary: Record<string, Partial<Record<ScenarioId, ScenarioSummary>>>;
  rssIdleKiB: Record<string, number>;
  targets: TargetResult[];
  capture?: CaptureReport;
  agentProfile?: AgentProfile;
  /** per-feature cost rows (bench/features/) */
  features?: FeatureResult[];
  resultsFile: string;
  notes: string[];
}

export interface CaptureReport {
  unavailable?: string;
  rows?: { method: string; connectsPerSecond: Spread; usPerConnect: number; p50Us?: number; p99Us?: number }[];
  source?: string;
}

export function fmtSpread(s: Spread | undefined, digits = 0, unit = ''): string {
  if (!s || !Number.isFinite(s.median)) return 'n/a';
  const f = (x: number) => x.toFixed(digits);
  return s.n > 1 && s.min !== s.max ? `${f(s.median)}${unit} (${f(s.min)}–${f(s.max)})` : `${f(s.median)}${unit}`;
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return 'n/a';
  return `${(a / b).toFixed(2)}×`;
}

const mb = (kib: number | undefined) => (kib === undefined || !Number.isFinite(kib) ? 'n/a' : `${(kib / 1024).toFixed(1)}`);

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

function latencyTable(inp: ReportInput, scope: Scope, sid: ScenarioId): string[] {
  const lines = [
    `**${SCENARIO_LABELS[sid]}** — latency added over direct, µs, median (min–max) of ${inp.method.reps} interleaved runs`,
    '',
    row(['path', 'added p50', 'added p90', 'added p99', 'added p99.9', 'p50 / p99 (absolute)', 'vs nginx p50 / p99', 'proxy CPU µs/req', 'vs nginx CPU']),
    row(Array(9).fill('---')),
  ];
  const nginx = inp.summary[pathKey('nginx', scope)]?.[sid];
  for (const p of inp.paths.filter((x) => x.scope === scope)) {
    if (p.unavailable) {
      lines.push(row([p.label, `not available: ${p.unavailable}`, '', '', '', '', '', '', '']));
      continue;
    }
    const s = inp.summary[p.key]?.[sid];
    if (!s) continue;
    if (s.failed === s.reps) {
      lines.push(row([p.label, `failed: ${s.errors.join('; ').slice(0, 200)}`, '', '', '', '', '', '', '']));
      continue;
    }
    const direct = p.id === 'direct';
    lines.push(
      row([
        p.label + (s.failed ? ` (${s.failed}/${s.reps} runs failed)` : '') + (s.errorPercent ? ` — could not keep up: ${fmtSpread(s.errorPercent, 1)}% of requests failed or unanswered` : ''),
        direct ? '—' : fmtSpread(s.addedUs.p50),
        direct ? '—' : fmtSpread(s.addedUs.p90),
        direct ? '—' : fmtSpread(s.addedUs.p99),
        direct ? '—' : fmtSpread(s.addedUs.p999),
        `${fmtSpread(s.latencyUs.p50)} / ${fmtSpread(s.latencyUs.p99)}`,
        direct || p.id === 'nginx' ? '—' : `${ratio(s.addedUs.p50?.median, nginx?.addedUs.p50?.median)} / ${ratio(s.addedUs.p99?.median, nginx?.addedUs.p99?.median)}`,
        direct ? '—' : fmtSpread(s.cpuUsPerReq, 1),
        direct || p.id === 'nginx' ? '—' : ratio(s.cpuUsPerReq?.median, nginx?.cpuUsPerReq?.median),
      ]),
    );
  }
  return [...lines, ''];
}

function throughputTable(inp: ReportInput, scope: Scope, sids: ScenarioId[]): string[] {
  const head = ['path', ...sids.map((s) => shortLabel(s)), 'proxy RSS idle / max under load (MB)'];
  const lines = [row(head), row(head.map(() => '---'))];
  for (const p of inp.paths.filter((x) => x.scope === scope)) {
    if (p.unavailable) {
      lines.push(row([p.label, ...sids.map(() => 'not available'), '']));
      continue;
    }
    const cells = sids.map((sid) => {
      const s = inp.summary[p.key]?.[sid];
      if (p.unsupported?.[sid]) return `n/a: ${p.unsupported[sid]}`;
      if (!s) return '—';
      if (s.failed === s.reps) return `failed: ${s.errors[0]?.slice(0, 80) ?? ''}`;
      const base = fmtSpread(s.rps);
      if (sid === 'tcp' || sid === 'churn') return `${base} /s, p50 ${fmtSpread(s.latencyUs.p50)} µs, p99 ${fmtSpread(s.latencyUs.p99)} µs${cpuNote(s)}`;
      return `${base} req/s${cpuNote(s)}`;
    });
    const maxRss = Math.max(...Object.values(inp.summary[p.key] ?? {}).map((s) => s?.rssMaxKiB?.max ?? NaN).filter(Number.isFinite));
    lines.push(row([p.label, ...cells, p.id === 'direct' ? '—' : `${mb(inp.rssIdleKiB[p.key])} / ${mb(Number.isFinite(maxRss) ? maxRss : undefined)}`]));
  }
  return [...lines, ''];
}

function cpuNote(s: ScenarioSummary): string {
  return s.cpuUsPerReq ? `, ${fmtSpread(s.cpuUsPerReq, 1)} µs CPU/req` : '';
}

function shortLabel(s: ScenarioId): string {
  return { ol4: 'open loop c4', ol16: 'open loop c16', max: 'max rps (wrk c16)', h2: 'HTTP/2 rps (h2load 4×10)', grpc: 'gRPC-shaped rps (h2load 4×10)', tcp: 'TCP echo round trips (1 conn)', churn: 'new connection per request (4 parallel)' }[s];
}

export function renderReport(inp: ReportInput): string {
  const m = inp.machine;
  const out: string[] = [
    `### Results: ${inp.date} (${inp.mode} run, ${Math.round(inp.durationSeconds)} s)`,
    '',
    `Machine: ${m.cpuModel}, ${m.cores} cores, Linux ${m.kernel}, ${m.memGiB} GiB; load average ${m.loadStart} at start, ${m.loadEnd} at end.`,
    `Versions: Node ${m.versions.node}, nginx ${m.versions.nginx}, HAProxy ${m.versions.haproxy}, Weft ${m.versions.weft}, wrk ${m.versions.wrk}, h2load ${m.versions.h2load}.`,
    `Method: proxy under test pinned to CPU ${inp.method.proxyCpu}, load generator and upstream to CPU ${inp.method.loadCpu}; ${inp.method.reps} interleaved repetitions of ${inp.method.seconds} s after ${inp.method.warmupSeconds} s warm-up each; open loop at ${inp.method.rate} rps. Raw numbers: \`${inp.resultsFile}\`.`,
    '',
  ];
  for (const n of inp.notes) out.push(`> ${n}`, '');
  out.push('#### Targets (issue 10)', '', row(['target', 'goal', 'measured', 'met']), row(['---', '---', '---', '---']));
  for (const t of inp.targets) out.push(row([t.name, t.target, t.measured, t.met === null ? `not evaluated: ${t.why ?? ''}` : t.met ? 'yes' : '**no**']));
  out.push('');
  for (const scope of ['same-node', 'cross-node'] as Scope[]) {
    if (!inp.paths.some((p) => p.scope === scope)) continue;
    out.push(`#### ${scope === 'same-node' ? 'Same node' : 'Cross node'}: client pod → server pod ${scope === 'same-node' ? 'on the same node' : 'on the other node'}`, '');
    for (const sid of ['ol4', 'ol16'] as ScenarioId[]) if (inp.paths.some((p) => inp.summary[p.key]?.[sid])) out.push(...latencyTable(inp, scope, sid));
    const sids = (['max', 'h2', 'grpc', 'tcp', 'churn'] as ScenarioId[]).filter((sid) => inp.paths.some((p) => p.scope === scope && inp.summary[p.key]?.[sid]));
    if (sids.length) out.push('Throughput and connection handling, median (min–max):', '', ...throughputTable(inp, scope, sids));
  }
  if (inp.features?.length) out.push(...featureTable(inp.features, inp.method.reps));
  if (inp.capture) {
    out.push('#### Capture alone: eBPF connect4 redirect vs iptables, to the same listener', '');
    if (inp.capture.unavailable || !inp.capture.rows?.length) out.push(`Not available: ${inp.capture.unavailable ?? 'no result'}`, '');
    else {
      out.push(row(['method', 'connects/s', 'µs per connect (1 / rate)', 'connect p50 / p99 µs']), row(['---', '---', '---', '---']));
      for (const r of inp.capture.rows) out.push(row([r.method, fmtSpread(r.connectsPerSecond), r.usPerConnect.toFixed(1), `${r.p50Us ?? 'n/a'} / ${r.p99Us ?? 'n/a'}`]));
      out.push('');
      if (inp.capture.source) out.push(`(${inp.capture.source})`, '');
    }
  }
  const prof = inp.agentProfile;
  if (prof) {
    out.push('#### Where the agent spends its time (`--cpu-prof`, node-1 agent under max-throughput load)', '');
    if (prof.error || !prof.functions) out.push(`Not available: ${prof.error ?? 'no profile'}`, '');
    else {
      out.push(`${prof.load.rps ?? '?'} req/s, ${prof.load.cpuUsPerReq ?? '?'} µs CPU/req while profiled; the main thread was idle ${prof.idleMs ?? '?'} of ${prof.totalMs ?? '?'} ms; shares below are of its busy time; profile: \`${prof.file.replace(/^.*\/bench\/results\//, 'bench/results/')}\` (open in Chrome DevTools or speedscope).`, '');
      out.push(row(['self time by file', '%', 'self time by function', '%']), row(['---', '---', '---', '---']));
      for (let i = 0; i < 12; i++) {
        const f = prof.files?.[i];
        const g = prof.functions[i];
        if (!f && !g) break;
        out.push(row([f?.name ?? '', f ? String(f.selfPercent) : '', g ? `${g.name} (${g.where})` : '', g ? String(g.selfPercent) : '']));
      }
      out.push('');
    }
  }
  return out.join('\n');
}

/** Replaces the results section of the README (or appends one). */
export function spliceReadme(readme: string, section: string): string {
  const block = `${RESULTS_START}\n${section}\n${RESULTS_END}`;
  const a = readme.indexOf(RESULTS_START);
  const b = readme.indexOf(RESULTS_END);
  if (a >= 0 && b > a) return readme.slice(0, a) + block + readme.slice(b + RESULTS_END.length);
  return `${readme.trimEnd()}\n\n${block}\n`;
}
