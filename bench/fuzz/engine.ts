// Runs one target's oracle over N generated inputs with fast-check (seeded: a run is reproducible from
// its seed; a failure is shrunk to a small input). Progress goes to `progress` every 500 inputs so a
// watchdog can tell a hang from a slow target and the memory oracle can sample.
import fc from 'fast-check';
import type { FuzzContext } from './target.js';

export interface EngineOptions {
  inputs: number;
  seed: number;
  /** told every few hundred inputs: inputs done so far */
  progress?: (done: number) => void;
  /** run index to print instead of checking (replay of a hang the watchdog reported) */
  replay?: number;
  /** stop after this long and report the inputs run so far (a slow target on a shared machine) */
  maxMs?: number;
}

export interface EngineResult {
  inputs: number;
  runs: number;
  ms: number;
  failure?: { error: string; input: string; seed: number; path: string | undefined };
}

export async function runEngine(ctx: FuzzContext<unknown>, o: EngineOptions): Promise<EngineResult> {
  const per = ctx.perRun ?? (() => 1);
  let done = 0;
  let runs = 0;
  let nextReport = 500;
  const count = (input: unknown) => {
    runs++;
    done += per(input);
    if (done >= nextReport) {
      nextReport = done + 500;
      o.progress?.(done);
    }
  };
  const started = performance.now();
  if (o.replay !== undefined) {
    // the same seed generates the same sequence: walk to the run asked for and print it
    const values = fc.sample(ctx.arbitrary, { seed: o.seed, numRuns: o.replay + 1 });
    return { inputs: 0, runs: 0, ms: 0, failure: { error: 'replay', input: ctx.show(values[o.replay]), seed: o.seed, path: String(o.replay) } };
  }
  // runs needed for o.inputs inputs: a batched target's runs carry several inputs each
  const numRuns = Math.max(1, Math.ceil(o.inputs / Math.max(1, per(fc.sample(ctx.arbitrary, { seed: o.seed, numRuns: 1 })[0]))));
  const prop = fc.asyncProperty(ctx.arbitrary, async (input) => {
    count(input);
    await ctx.check(input);
  });
  const details = await fc.check(prop, { numRuns, seed: o.seed, endOnFailure: ctx.shrink === false, markInterruptAsFailure: false, ...(o.maxMs ? { interruptAfterTimeLimit: o.maxMs } : {}) });
  const ms = performance.now() - started;
  if (!details.failed) return { inputs: done, runs, ms };
  const ce = details.counterexample?.[0];
  const err = details.errorInstance;
  return {
    inputs: done,
    runs,
    ms,
    failure: {
      error: err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ''}` : String(err),
      input: ce === undefined ? '(none)' : clip(ctx.show(ce)),
      seed: details.seed,
      path: details.counterexamplePath ?? undefined,
    },
  };
}

/** an input as shown in a report: whole up to 8 KB (a 70 KB header value would bury the rest) */
function clip(s: string): string {
  return s.length <= 8192 ? s : `${s.slice(0, 8192)}… (${s.length} characters; replay the seed for all of it)`;
}
