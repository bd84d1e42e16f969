// `node dist/bench/resilience/soak.js [--rate 1000] [--minutes 30] [--cert-ttl 10m] [--sample-seconds 30]`:
// the soak of issue 15. Mixed traffic for a long time (open-loop new connections, half same node, half cross
// node, plus one long TCP stream across nodes) while workload certificates rotate (the controller issues them
// for --cert-ttl; agents renew at half their life: every 5 minutes with 10m). Every --sample-seconds it
// records each agent's RSS and the certificates' serials; at the end: failed requests (zero is the target),
// whether the stream survived, how often certificates rotated, and the RSS trend (flat is the target: the
// last third's mean against the first third's). Writes bench/results/resilience-soak-*.json.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { uniqueSandboxId } from '../../sandbox/api.js';
import { sandboxStatus } from '../../sandbox/status.js';
import { buildResilienceSandbox, longestGap, startLoad, runAsMain, writeResult } from './scenario.js';

interface Sample {
  at: number;
  rssMiB: Record<string, number>;
  /** the agents' certificate expiries (weft_certificate_expiry_seconds), to see rotations */
  certExpiry: Record<string, number>;
}

function rssMiB(pid: number | null): number {
  if (!pid) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}

async function certExpiry(metricsUrl: string | null): Promise<number> {
  if (!metricsUrl) return 0;
  try {
    const text = await (await fetch(metricsUrl)).text();
    let max = 0;
    for (const m of text.matchAll(/^weft_certificate_expiry_seconds\{[^}]*\} ([\d.e+]+)$/gm)) max = Math.max(max, Number(m[1]));
    return max;
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rate: { type: 'string', default: '1000' }, minutes: { type: 'string', default: '30' }, 'cert-ttl': { type: 'string', default: '10m' }, 'sample-seconds': { type: 'string', default: '30' }, id: { type: 'string' } } });
  const say = (l: string) => process.stderr.write(`[soak] ${l}\n`);
  const id = values.id ?? uniqueSandboxId();
  const sb = await buildResilienceSandbox(id, say, undefined, ['--cert-ttl', values['cert-ttl']!]);
  const samples: Sample[] = [];
  const rotations: Record<string, number> = {};
  let result: Record<string, unknown> = {};
  try {
    const load = await startLoad(sb, { rate: Number(values.rate), targets: ['near', 'far'], stream: 'far' });
    const end = Date.now() + Number(values.minutes) * 60_000;
    const last: Record<string, number> = {};
    let lastAt = Date.now();
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, Math.min(Number(values['sample-seconds']) * 1000, Math.max(0, end - Date.now()))));
      const st = sandboxStatus(sb.state);
      const s: Sample = { at: Date.now(), rssMiB: {}, certExpiry: {} };
      for (const n of st.nodes) {
        s.rssMiB[n.name] = rssMiB(n.agent.pid);
        s.certExpiry[n.name] = await certExpiry(n.agent.metrics);
        // seconds to expiry fall with the clock; a renewed certificate makes them jump back up
        const expected = last[n.name] === undefined ? undefined : last[n.name]! - (s.at - lastAt) / 1000;
        if (expected !== undefined && s.certExpiry[n.name]! > expected + 5) rotations[n.name] = (rotations[n.name] ?? 0) + 1;
        last[n.name] = s.certExpiry[n.name]!;
      }
      samples.push(s);
      lastAt = s.at;
      say(`${new Date(s.at).toISOString()} RSS ${JSON.stringify(s.rssMiB)} MiB, certificate rotations so far ${JSON.stringify(rotations)}`);
    }
    const summary = await load.stop();
    const third = Math.max(1, Math.floor(samples.length / 3));
    const trend: Record<string, { firstThirdMiB: number; lastThirdMiB: number }> = {};
    for (const node of Object.keys(samples[0]?.rssMiB ?? {})) {
      const mean = (xs: Sample[]) => Math.round(xs.reduce((a, x) => a + (x.rssMiB[node] ?? 0), 0) / xs.length);
      trend[node] = { firstThirdMiB: mean(samples.slice(0, third)), lastThirdMiB: mean(samples.slice(-third)) };
    }
    result = {
      rate: Number(values.rate),
      minutes: Number(values.minutes),
      certTtl: values['cert-ttl'],
      load: { ...summary, stream: undefined },
      stream: { echoes: summary.stream?.echoes.length ?? 0, longestGapMs: longestGap(summary.stream?.echoes ?? []), error: summary.stream?.error ?? '' },
      rotations,
      rssTrend: trend,
      samples,
    };
  } finally {
    await sb.down();
  }
  const file = writeResult('resilience-soak', result);
  const l = result['load'] as { ok: number; failed: number; errors: Record<string, number>; achievedRps: number; maxMs: number };
  const st = result['stream'] as { echoes: number; longestGapMs: number; error: string };
  process.stdout.write(
    [
      `soak: ${values.rate} rps offered for ${values.minutes} min, ${l.achievedRps} rps achieved; certificates for ${values['cert-ttl']}`,
      `  requests ok ${l.ok}, failed ${l.failed} ${l.failed ? JSON.stringify(l.errors) : ''}, slowest ${l.maxMs} ms`,
      `  long TCP stream: ${st.echoes} echoes, longest silence ${st.longestGapMs} ms, ${st.error ? `ended: ${st.error}` : 'never cut'}`,
      `  certificate rotations seen: ${JSON.stringify(result['rotations'])}`,
      `  agent RSS, first third → last third: ${JSON.stringify(result['rssTrend'])}`,
      `  results: ${file}`,
    ].join('\n') + '\n',
  );
}

runAsMain(import.meta.url, main);
