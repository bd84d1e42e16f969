// The fuzz job's smoke inside `npm test`: every target of bench/fuzz with a fixed seed and a few hundred
// to two thousand inputs (about 15 s in all), so a change that breaks a target or reintroduces a finding
// fails here. The million-input runs live outside the suite: bench/fuzz/README.md.
import t from 'tap';
import { runEngine } from '../../bench/fuzz/engine.js';
import { TARGETS } from '../../bench/fuzz/targets/index.js';

// inputs per target: the slower ones (real sockets, signatures) fewer
const INPUTS: Record<string, number> = { h1: 2000, objects: 2000, config: 1000, csr: 1000, h2: 200 };

// h2 is not in this smoke yet: after its runs the target's teardown leaves something holding the event loop
// (not found yet; bench/fuzz/README.md), which would hold this file until tap's timeout. Its regression
// test (regressions.test.ts) runs one conversation through it.
for (const target of TARGETS.filter((x) => x.name !== 'h2')) {
  t.test(`fuzz smoke: ${target.name}`, async (t) => {
    const ctx = await target.setup();
    t.teardown(() => ctx.close());
    const r = await runEngine(ctx, { inputs: INPUTS[target.name] ?? 500, seed: 20261202 });
    t.equal(r.failure, undefined, r.failure ? `${r.failure.error}\ninput: ${r.failure.input}` : 'no finding');
    t.ok(r.inputs >= (INPUTS[target.name] ?? 500), `${r.inputs} inputs in ${Math.round(r.ms)} ms`);
  });
}
