// `node dist/bench/resilience/restart.js [--rate 1000] [--nodes node-1,node-2] [--phase-seconds 4]`:
// agents restarted (upgraded in place) under open-loop load of new connections, half same node, half cross
// node, with one long TCP stream crossing nodes. Reports failed requests, the slowest request, and the
// stream's echoes before, during and after each restart. Writes bench/results/resilience-restart-*.json.
import { parseArgs } from 'node:util';
import { buildResilienceSandbox, echoesBetween, longestGap, restartAgent, startLoad, runAsMain, writeResult } from './scenario.js';
import { uniqueSandboxId } from '../../sandbox/api.js';

export interface RestartRun {
  rate: number;
  restarts: { node: string; code: number | null; out: string; startedAt: number; endedAt: number }[];
  load: Awaited<ReturnType<Awaited<ReturnType<typeof startLoad>>['stop']>>;
  stream: { before: number; during: number[]; after: number[]; longestGapMs: number; error: string };
}

export async function runRestartScenario(o: { id: string; rate: number; nodes: string[]; phaseMs: number; say: (l: string) => void }): Promise<RestartRun> {
  const sb = await buildResilienceSandbox(o.id, o.say);
  try {
    const load = await startLoad(sb, { rate: o.rate, targets: ['near', 'far'], stream: 'far' });
    await new Promise((r) => setTimeout(r, o.phaseMs));
    const restarts: RestartRun['restarts'] = [];
    for (const node of o.nodes) {
      o.say(`restart-agent ${node}`);
      const r = await restartAgent(o.id, node);
      o.say(`  ${r.out} (${r.endedAt - r.startedAt} ms)`);
      restarts.push({ node, ...r });
      await new Promise((res) => setTimeout(res, o.phaseMs));
    }
    const summary = await load.stop();
    const echoes = summary.stream?.echoes ?? [];
    const stream = {
      before: echoesBetween(echoes, 0, restarts[0]?.startedAt ?? Infinity),
      during: restarts.map((r) => echoesBetween(echoes, r.startedAt, r.endedAt)),
      after: restarts.map((r, i) => echoesBetween(echoes, r.endedAt, restarts[i + 1]?.startedAt ?? Infinity)),
      longestGapMs: longestGap(echoes),
      error: summary.stream?.error ?? '',
    };
    return { rate: o.rate, restarts, load: { ...summary, stream: undefined }, stream };
  } finally {
    await sb.down();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rate: { type: 'string', default: '1000' }, nodes: { type: 'string', default: 'node-1,node-2' }, 'phase-seconds': { type: 'string', default: '4' }, id: { type: 'string' } } });
  const say = (l: string) => process.stderr.write(`[resilience] ${l}\n`);
  const run = await runRestartScenario({ id: values.id ?? uniqueSandboxId(), rate: Number(values.rate), nodes: values.nodes!.split(','), phaseMs: Number(values['phase-seconds']) * 1000, say });
  const file = writeResult('resilience-restart', run);
  const l = run.load;
  process.stdout.write(
    [
      `restart under load: ${run.rate} rps offered, ${l.achievedRps} rps achieved over ${l.seconds.toFixed(1)} s, new connection per request (half same node, half cross node)`,
      `  requests ok ${l.ok}, failed ${l.failed} ${l.failed ? JSON.stringify(l.errors) : ''}, slowest ${l.maxMs} ms`,
      ...run.restarts.map((r, i) => `  ${r.node}: ${r.out.split('\n')[0]} — took ${r.endedAt - r.startedAt} ms; stream echoes during ${run.stream.during[i]}, after ${run.stream.after[i]}`),
      `  long TCP stream (cross node): echoes before ${run.stream.before}, longest silence ${run.stream.longestGapMs} ms, ${run.stream.error ? `ended: ${run.stream.error}` : 'never cut'}`,
      `  results: ${file}`,
    ].join('\n') + '\n',
  );
}

runAsMain(import.meta.url, main);
