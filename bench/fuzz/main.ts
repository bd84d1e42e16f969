// The fuzz job (outside `npm test`): each target in its own worker thread for N inputs, with three
// oracles beyond the targets' own: no crash (an uncaught exception ends the worker and is reported with
// the run to replay), no hang (the heartbeat must move within --hang-ms, or the worker is terminated), and
// bounded memory (memory.ts). Prints one JSON line per target and exits non-zero on any finding.
//
//   node dist/bench/fuzz/main.js [--target h1,objects,...] [--inputs 1000000] [--seed 1] [--hang-ms 30000]
//   node dist/bench/fuzz/main.js --target h1 --seed 7 --replay 12345   # print the input of run 12345
//   --max-seconds S: stop a target after S seconds and report the inputs it ran (a slow target, a busy machine)
import { appendFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { memoryVerdict, type MemSample } from './memory.js';
import type { EngineResult } from './engine.js';
import { TARGETS } from './targets/index.js';

interface Args {
  targets: string[];
  inputs: number;
  seed: number;
  hangMs: number;
  replay?: number;
  maxSeconds?: number;
  out?: string;
}

const NUMERIC: Record<string, 'inputs' | 'seed' | 'hangMs' | 'replay' | 'maxSeconds'> = {
  '--inputs': 'inputs',
  '--seed': 'seed',
  '--hang-ms': 'hangMs',
  '--replay': 'replay',
  '--max-seconds': 'maxSeconds',
};

function parseArgs(argv: string[]): Args {
  const a: Args = { targets: TARGETS.map((t) => t.name), inputs: 1_000_000, seed: 1, hangMs: 30_000 };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!;
    const v = argv[i + 1];
    if (v === undefined) throw new Error(`${flag} needs a value; see the comment at the top of bench/fuzz/main.ts`);
    if (flag === '--target') a.targets = v.split(',');
    else if (flag === '--out') a.out = v;
    else if (NUMERIC[flag] && Number.isFinite(Number(v))) a[NUMERIC[flag]] = Number(v);
    else throw new Error(`bad argument ${flag} ${v}; see the comment at the top of bench/fuzz/main.ts`);
  }
  for (const t of a.targets) if (!TARGETS.some((x) => x.name === t)) throw new Error(`no fuzz target "${t}"; targets: ${TARGETS.map((x) => x.name).join(', ')}`);
  return a;
}

export interface TargetReport {
  target: string;
  seed: number;
  inputs: number;
  seconds: number;
  perSecond: number;
  finding: string | undefined;
  rssMaxMb: number;
  heapFloorEarlyMb: number;
  heapFloorLateMb: number;
}

function runOne(name: string, a: Args): Promise<TargetReport> {
  const heartbeat = new SharedArrayBuffer(8);
  const hb = new Int32Array(heartbeat);
  const samples: MemSample[] = [];
  const started = performance.now();
  return new Promise((resolve) => {
    const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: { target: name, inputs: a.inputs, seed: a.seed, heartbeat, ...(a.replay !== undefined ? { replay: a.replay } : {}), ...(a.maxSeconds ? { maxMs: a.maxSeconds * 1000 } : {}) } });
    let finding: string | undefined;
    let result: EngineResult | undefined;
    let lastRun = -1;
    let lastMove = performance.now();
    let lastLog = performance.now();
    const watch = setInterval(() => {
      const run = Atomics.load(hb, 1);
      if (performance.now() - lastLog > 30_000) {
        lastLog = performance.now();
        process.stderr.write(`${new Date().toISOString()} ${name}: ${Atomics.load(hb, 0)} inputs, ${Math.round((performance.now() - started) / 1000)} s, rss ${Math.round(process.memoryUsage.rss() / 1048576)} MB\n`);
      }
      if (run !== lastRun) {
        lastRun = run;
        lastMove = performance.now();
      } else if (performance.now() - lastMove > a.hangMs) {
        finding = `hang: run ${run - 1} made no progress for ${a.hangMs} ms (replay: --seed ${a.seed} --replay ${run - 1})`;
        void w.terminate();
        finish();
      }
    }, 1000);
    w.on('message', (m: { type: string; done?: number; heapUsed?: number; error?: string; run?: number; result?: EngineResult }) => {
      if (m.type === 'progress') samples.push({ n: m.done!, heapUsed: m.heapUsed!, rss: process.memoryUsage.rss() });
      else if (m.type === 'crash') finding = `crash: ${m.error} (replay: --seed ${a.seed} --replay ${m.run! - 1})`;
      else if (m.type === 'done') {
        result = m.result;
        // The result is in: report now. terminate() may never complete for a worker that ran the h2 target's
        // node proxies (its 'exit' does not come), and the process exits at the end anyway.
        void w.terminate();
        finish();
      }
    });
    w.on('error', (err) => (finding ??= `crash: ${err.stack ?? err.message}`));
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearInterval(watch);
      const seconds = (performance.now() - started) / 1000;
      const mem = memoryVerdict(samples);
      if (result?.failure) finding ??= `${result.failure.error}\ninput: ${result.failure.input}\nseed ${result.failure.seed} path ${result.failure.path}`;
      if (!mem.ok) finding ??= `memory: ${mem.why}`;
      const inputs = result?.inputs ?? Atomics.load(hb, 0);
      resolve({ target: name, seed: a.seed, inputs, seconds: Math.round(seconds), perSecond: Math.round(inputs / seconds), finding, rssMaxMb: mem.rssMaxMb, heapFloorEarlyMb: mem.heapFloorEarlyMb, heapFloorLateMb: mem.heapFloorLateMb });
    };
    w.on('exit', finish);
  });
}

const args = parseArgs(process.argv.slice(2));
let failed = false;
for (const name of args.targets) {
  const r = await runOne(name, args);
  const line = JSON.stringify({ ...r, at: new Date().toISOString() });
  console.log(line);
  if (args.out) appendFileSync(args.out, line + '\n');
  if (r.finding && args.replay === undefined) failed = true;
}
process.exit(failed ? 1 : 0);
