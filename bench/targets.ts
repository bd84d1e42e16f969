// Issue 10's targets, evaluated on one run's summary: every figure is a ratio against nginx or HAProxy
// measured in the same run (pinned to the same core, interleaved), so the verdict does not depend on the
// machine; "no TCP regression" compares against the previous full run's ratio, since it is about Weft
// against itself.
import type { ScenarioId } from './scenarios.js';
import type { ScenarioSummary } from './summary.js';

export interface TargetResult {
  name: string;
  target: string;
  measured: string;
  /** null: could not be evaluated (a path is not available or failed) */
  met: boolean | null;
  why?: string;
}

/** The figures of an earlier full run that "no regression" targets compare against. */
export interface Baseline {
  file: string;
  /** same-node/weft and same-node/haproxy TCP echo: CPU µs per round trip and round trips per second */
  weftTcpCpuUs?: number;
  haproxyTcpCpuUs?: number;
  weftTcpRps?: number;
  haproxyTcpRps?: number;
}

export interface TargetInputs {
  summary: Record<string, Partial<Record<ScenarioId, ScenarioSummary>>>;
  agentRssIdleKiB: Record<string, number>;
  unavailable: Record<string, string>;
  baseline?: Baseline;
}

/** How much worse than the baseline's ratio still counts as "no regression": run-to-run noise here is ±20%. */
export const REGRESSION_ALLOWANCE = 1.2;

const us = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? 'n/a' : `${Math.round(x)} µs`);
const num = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? x : undefined);

export function evaluateTargets(inp: TargetInputs): TargetResult[] {
  const s = inp.summary;
  const out: TargetResult[] = [];
  const med = (key: string, sid: ScenarioId, pick: (x: ScenarioSummary) => { median: number } | undefined) => {
    const x = s[key]?.[sid];
    return x ? num(pick(x)?.median) : undefined;
  };
  const why = (sid: ScenarioId, ...keys: string[]) =>
    keys.map((k) => (inp.unavailable[k] ? `${k}: ${inp.unavailable[k]}` : undefined)).find(Boolean) ??
    (keys.some((k) => !s[k]?.[sid]) ? `scenario ${sid} not run in this mode` : 'a run failed');
  const push = (name: string, target: string, ok: boolean, measured: string, met: () => boolean, sid: ScenarioId, keys: string[]) =>
    out.push({ name, target, measured: ok ? measured : 'n/a', met: ok ? met() : null, ...(ok ? {} : { why: why(sid, ...keys) }) });

  // CPU per request, same node
  for (const [sid, factor, what] of [
    ['max', 2, 'max throughput (wrk c16)'],
    ['ol4', 1.5, '1000 rps open loop (4 conns)'],
  ] as const) {
    const w = med('same-node/weft', sid, (x) => x.cpuUsPerReq);
    const n = med('same-node/nginx', sid, (x) => x.cpuUsPerReq);
    push(`CPU per request, same node, ${what}`, `≤ ${factor}× nginx`, w !== undefined && n !== undefined, `Weft ${w?.toFixed(1)} µs vs nginx ${n?.toFixed(1)} µs (${((w ?? 0) / (n ?? 1)).toFixed(2)}×)`, () => w! <= factor * n!, sid, ['same-node/weft', 'same-node/nginx']);
  }

  // Throughput, same node: both proxies pinned to the same single core, so req/s is req/s per core.
  {
    const w = med('same-node/weft', 'max', (x) => x.rps);
    const n = med('same-node/nginx', 'max', (x) => x.rps);
    push('max req/s same node, per core (wrk c16)', '≥ 50% of nginx', w !== undefined && n !== undefined, `Weft ${Math.round(w ?? 0)} vs nginx ${Math.round(n ?? 0)} req/s (${((100 * (w ?? 0)) / (n ?? 1)).toFixed(0)}%)`, () => w! >= 0.5 * n!, 'max', ['same-node/weft', 'same-node/nginx']);
  }
  for (const [sid, what] of [
    ['h2', 'HTTP/2 req/s (h2load 4×10)'],
    ['grpc', 'gRPC-shaped req/s (h2load 4×10)'],
  ] as const) {
    const w = med('same-node/weft', sid, (x) => x.rps);
    const h = med('same-node/haproxy', sid, (x) => x.rps);
    push(`${what}, same node`, '≥ HAProxy', w !== undefined && h !== undefined, `Weft ${Math.round(w ?? 0)} vs HAProxy ${Math.round(h ?? 0)} req/s`, () => w! >= h!, sid, ['same-node/weft', 'same-node/haproxy']);
  }

  // Latency added over direct at 1000 rps: same node one Weft hop vs the nginx sidecar; cross node two Weft
  // hops (mTLS) vs the nginx sidecar's one hop. A negative nginx figure is noise: it counts as 0.
  for (const [scope, factor, what] of [
    ['same-node', 1.5, 'same node'],
    ['cross-node', 2.5, 'cross node (2 mTLS hops vs nginx\'s one)'],
  ] as const) {
    for (const sid of ['ol4', 'ol16'] as const) {
      for (const pct of ['p50', 'p99']) {
        const w = med(`${scope}/weft`, sid, (x) => x.addedUs[pct]);
        const n = med(`${scope}/nginx`, sid, (x) => x.addedUs[pct]);
        push(
          `added ${pct}, ${what}, 1000 rps ${sid === 'ol4' ? '4' : '16'} conns`,
          `≤ ${factor}× nginx`,
          w !== undefined && n !== undefined,
          `Weft ${us(w)} vs ${factor}× nginx ${us(n === undefined ? undefined : factor * n)}`,
          () => w! <= factor * Math.max(n!, 0),
          sid,
          [`${scope}/weft`, `${scope}/nginx`],
        );
      }
    }
  }

  // Memory: each agent idle; the most any agent reached under load (same-node and cross-node scenarios).
  const idle = Object.entries(inp.agentRssIdleKiB);
  out.push({
    name: 'agent RSS idle',
    target: '≤ 60 MB',
    measured: idle.length ? idle.map(([node, k]) => `${node} ${(k / 1024).toFixed(1)} MB`).join(', ') : 'n/a',
    met: idle.length ? idle.every(([, k]) => k <= 60 * 1024) : null,
    ...(idle.length ? {} : { why: inp.unavailable['same-node/weft'] ?? 'no agent running' }),
  });
  // Under load: the node-1 agent alone, i.e. the same-node path (the cross-node path samples both agents together).
  const loaded = Object.values(s['same-node/weft'] ?? {}).map((x) => x?.rssMaxKiB?.max ?? NaN).filter(Number.isFinite);
  out.push({
    name: 'agent RSS under load (node-1 agent, max over the same-node scenarios)',
    target: '≤ 100 MB',
    measured: loaded.length ? `${(Math.max(...loaded) / 1024).toFixed(1)} MB` : 'n/a',
    met: loaded.length ? Math.max(...loaded) <= 100 * 1024 : null,
    ...(loaded.length ? {} : { why: inp.unavailable['same-node/weft'] ?? 'no load measured' }),
  });

  // Connection churn: CPU per new connection (one request each).
  {
    const w = med('same-node/weft', 'churn', (x) => x.cpuUsPerReq);
    const h = med('same-node/haproxy', 'churn', (x) => x.cpuUsPerReq);
    push('churn CPU per connection, same node', '≤ 2× HAProxy', w !== undefined && h !== undefined, `Weft ${w?.toFixed(1)} µs vs HAProxy ${h?.toFixed(1)} µs (${((w ?? 0) / (h ?? 1)).toFixed(2)}×)`, () => w! <= 2 * h!, 'churn', ['same-node/weft', 'same-node/haproxy']);
  }

  // No TCP regression: Weft's TCP echo against HAProxy's in this run, compared with the same ratio in the
  // previous full run (ratios, because absolute figures move with the machine's load).
  {
    const wc = med('same-node/weft', 'tcp', (x) => x.cpuUsPerReq);
    const hc = med('same-node/haproxy', 'tcp', (x) => x.cpuUsPerReq);
    const wr = med('same-node/weft', 'tcp', (x) => x.rps);
    const hr = med('same-node/haproxy', 'tcp', (x) => x.rps);
    const b = inp.baseline;
    const bc = b?.weftTcpCpuUs !== undefined && b.haproxyTcpCpuUs ? b.weftTcpCpuUs / b.haproxyTcpCpuUs : undefined;
    const br = b?.weftTcpRps !== undefined && b.haproxyTcpRps ? b.weftTcpRps / b.haproxyTcpRps : undefined;
    const now = wc !== undefined && hc !== undefined && wr !== undefined && hr !== undefined;
    if (now && (bc === undefined || br === undefined)) {
      out.push({ name: 'no TCP regression (TCP echo vs HAProxy, against the previous full run)', target: `CPU and rate ratios within ${REGRESSION_ALLOWANCE}× of the baseline`, measured: `CPU ${(wc / hc).toFixed(2)}× HAProxy, rate ${(wr / hr).toFixed(2)}× HAProxy`, met: null, why: b ? `baseline ${b.file} has no TCP figures` : 'no earlier full run in bench/results' });
    } else {
      push(
        'no TCP regression (TCP echo vs HAProxy, against the previous full run)',
        `CPU and rate ratios within ${REGRESSION_ALLOWANCE}× of the baseline`,
        now,
        `CPU ${((wc ?? 0) / (hc ?? 1)).toFixed(2)}× HAProxy (baseline ${bc?.toFixed(2)}×), round trips ${((wr ?? 0) / (hr ?? 1)).toFixed(2)}× HAProxy (baseline ${br?.toFixed(2)}×; ${b?.file})`,
        () => wc! / hc! <= REGRESSION_ALLOWANCE * bc! && wr! / hr! >= br! / REGRESSION_ALLOWANCE,
        'tcp',
        ['same-node/weft', 'same-node/haproxy'],
      );
    }
  }
  return out;
}

/** The baseline figures from a results JSON written by an earlier full run. */
export function baselineFrom(file: string, json: { mode?: string; summary?: TargetInputs['summary'] }): Baseline | undefined {
  if (json.mode !== 'full' || !json.summary) return undefined;
  const m = (key: string, pick: (x: ScenarioSummary) => { median: number } | undefined) => {
    const x = json.summary?.[key]?.tcp;
    return x ? num(pick(x)?.median) : undefined;
  };
  const b: Baseline = { file };
  const set = (k: keyof Omit<Baseline, 'file'>, v: number | undefined) => {
    if (v !== undefined) b[k] = v;
  };
  set('weftTcpCpuUs', m('same-node/weft', (x) => x.cpuUsPerReq));
  set('haproxyTcpCpuUs', m('same-node/haproxy', (x) => x.cpuUsPerReq));
  set('weftTcpRps', m('same-node/weft', (x) => x.rps));
  set('haproxyTcpRps', m('same-node/haproxy', (x) => x.rps));
  return b;
}
