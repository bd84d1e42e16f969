// One target's run in a worker thread, so the main thread can watch it: a heartbeat in shared memory
// (inputs done, runs started) tells a hang from a slow target even when the worker is stuck in a loop
// that never yields, and the worker's heap is sampled for the memory oracle.
import { parentPort, workerData } from 'node:worker_threads';
import { runEngine } from './engine.js';
import { TARGETS } from './targets/index.js';

interface Job {
  target: string;
  inputs: number;
  seed: number;
  replay?: number;
  maxMs?: number;
  heartbeat: SharedArrayBuffer;
}

const job = workerData as Job;
// every proxy a target starts listens for exit; a target may start several
process.setMaxListeners(50);
const hb = new Int32Array(job.heartbeat);
const port = parentPort!;

// An exception no code caught (a socket 'error' with no listener, a throw in a timer): a crash finding.
process.on('uncaughtException', (err) => {
  port.postMessage({ type: 'crash', error: `${err.name}: ${err.message}\n${err.stack ?? ''}`, run: Atomics.load(hb, 1) });
  process.exit(3);
});
process.on('unhandledRejection', (err) => {
  port.postMessage({ type: 'crash', error: `unhandled rejection: ${String((err as Error)?.stack ?? err)}`, run: Atomics.load(hb, 1) });
  process.exit(3);
});

const target = TARGETS.find((t) => t.name === job.target);
if (!target) throw new Error(`no fuzz target ${job.target}`);
const ctx = await target.setup();
const check = ctx.check.bind(ctx);
ctx.check = (input) => {
  Atomics.add(hb, 1, 1);
  return check(input);
};
const result = await runEngine(ctx, {
  inputs: job.inputs,
  seed: job.seed,
  ...(job.replay !== undefined ? { replay: job.replay } : {}),
  ...(job.maxMs ? { maxMs: job.maxMs } : {}),
  progress: (done) => {
    Atomics.store(hb, 0, done);
    const m = process.memoryUsage();
    port.postMessage({ type: 'progress', done, heapUsed: m.heapUsed });
  },
});
await ctx.close();
port.postMessage({ type: 'done', result });
