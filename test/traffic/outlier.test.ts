// Outlier detection on plain inputs, Envoy's consecutive-error semantics: counters, ejection, the
// maxEjectionPercent floor of one, return at the first sweep after the ejection time, longer ejections
// while it keeps failing, the multiplier's decay while healthy, the 300 s cap.
import t from 'tap';

import type { CompiledOutlierDetection } from '../../common/policy/traffic.js';
import { BackendState } from '../../agent/traffic/backend-state.js';
import { ejectionTimeMs, outcomeStatus, recordOutcome, sweep } from '../../agent/traffic/outlier.js';
import { seeded } from './seeded.js';

const policy = (p: Partial<CompiledOutlierDetection> = {}): CompiledOutlierDetection => ({ consecutive5xxErrors: 5, consecutiveGatewayErrors: 0, intervalMs: 1000, baseEjectionTimeMs: 2000, maxEjectionPercent: 10, maxEjectionTimeMs: 300_000, ...p });

t.test('consecutive 5xx eject; a success in between resets', async (t) => {
  const p = policy();
  const b = new BackendState('k');
  const s = b.endpoint('a');
  for (let i = 0; i < 4; i++) t.notOk(recordOutcome(p, b, s, { status: 500 }, 3, 0));
  t.notOk(recordOutcome(p, b, s, { status: 200 }, 3, 0), 'a 200 resets');
  for (let i = 0; i < 4; i++) recordOutcome(p, b, s, { status: 500 }, 3, 0);
  t.ok(recordOutcome(p, b, s, { status: 500 }, 3, 100), 'the fifth in a row ejects');
  t.ok(s.ejected);
  t.equal(s.ejectedUntil, 2100);
  t.equal(s.ejections, 1);
  t.equal(outcomeStatus({ status: 0, error: 'connect_failed' }), 503, 'connect failures count as 503');
  t.equal(outcomeStatus({ status: 0, error: 'denied' }), undefined, 'a policy refusal says nothing about the endpoint');
  t.equal(outcomeStatus({ status: 0, error: 'timeout' }), 504);
});

t.test('gateway errors: 502/503/504 and connect failures; a 500 resets the gateway counter', async (t) => {
  const p = policy({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 3 });
  const b = new BackendState('k');
  const s = b.endpoint('a');
  recordOutcome(p, b, s, { status: 502 }, 3, 0);
  recordOutcome(p, b, s, { status: 0, error: 'connect_failed' }, 3, 0);
  recordOutcome(p, b, s, { status: 500 }, 3, 0);
  t.equal(s.consecutiveGateway, 0);
  recordOutcome(p, b, s, { status: 503 }, 3, 0);
  recordOutcome(p, b, s, { status: 504 }, 3, 0);
  t.notOk(s.ejected);
  t.ok(recordOutcome(p, b, s, { status: 0, error: 'connect_timeout' }, 3, 0));
});

t.test('maxEjectionPercent: at least one can always be ejected, never more than the share', async (t) => {
  const p = policy({ consecutive5xxErrors: 1, maxEjectionPercent: 10 });
  const b = new BackendState('k');
  t.ok(recordOutcome(p, b, b.endpoint('a'), { status: 500 }, 3, 0), 'one of three at 10%: allowed (floor of one)');
  t.notOk(recordOutcome(p, b, b.endpoint('b'), { status: 500 }, 3, 0), 'a second would be 66%');
  const p50 = policy({ consecutive5xxErrors: 1, maxEjectionPercent: 50 });
  const b2 = new BackendState('k2');
  t.ok(recordOutcome(p50, b2, b2.endpoint('a'), { status: 500 }, 4, 0));
  t.ok(recordOutcome(p50, b2, b2.endpoint('b'), { status: 500 }, 4, 0), 'two of four at 50%');
  t.notOk(recordOutcome(p50, b2, b2.endpoint('c'), { status: 500 }, 4, 0));
  const p100 = policy({ consecutive5xxErrors: 1, maxEjectionPercent: 100 });
  const b3 = new BackendState('k3');
  for (const id of ['a', 'b']) t.ok(recordOutcome(p100, b3, b3.endpoint(id), { status: 500 }, 2, 0), 'at 100% all may go');
});

t.test('returns at the first sweep after its time; ejected for longer if it keeps failing; multiplier decays', async (t) => {
  const p = policy({ consecutive5xxErrors: 1, intervalMs: 1000, baseEjectionTimeMs: 2000 });
  const b = new BackendState('k');
  const s = b.endpoint('a');
  b.endpoint('b');
  sweep(p, b, 0); // starts the sweep clock: sweeps at 1000, 2000, ...
  recordOutcome(p, b, s, { status: 500 }, 2, 500);
  t.equal(s.ejectedUntil, 2500);
  sweep(p, b, 2400);
  t.ok(s.ejected, 'still out before its time');
  sweep(p, b, 2999);
  t.ok(s.ejected, 'time up at 2500 but it returns only at the next sweep (3000)');
  sweep(p, b, 3000);
  t.notOk(s.ejected, 'back at the sweep');
  recordOutcome(p, b, s, { status: 500 }, 2, 3100);
  t.equal(s.ejections, 2);
  t.equal(s.ejectedUntil, 3100 + 4000, 'second ejection: 2 × base');
  sweep(p, b, 8000);
  t.notOk(s.ejected);
  // healthy for sweeps: the multiplier goes down one per sweep
  sweep(p, b, 9000);
  t.equal(s.ejections, 1);
  sweep(p, b, 20000);
  t.equal(s.ejections, 0);
  t.equal(ejectionTimeMs(p, 1000), 300_000, 'capped at 300 s');
  t.equal(ejectionTimeMs(policy({ baseEjectionTimeMs: 400_000 }), 1), 400_000, 'a base above the cap is used as is (Envoy)');
});

// Envoy's rule, on an injected clock (ms), sweeps at 1000, 2000, ... (the clock starts at 0).
const clock = (p: CompiledOutlierDetection) => {
  const b = new BackendState('k');
  const s = b.endpoint('bad');
  b.endpoint('good');
  sweep(p, b, 0);
  /** the bad endpoint fails (enough to trip the detector) at `at`, after the sweeps due by then */
  const fail = (at: number) => {
    sweep(p, b, at);
    return recordOutcome(p, b, s, { status: 500 }, 2, at);
  };
  return { b, s, fail };
};

t.test('Envoy: failing again before the next sweep after its return, an endpoint is ejected for base × 1, 2, 3, ...', async (t) => {
  const p = policy({ consecutive5xxErrors: 1, intervalMs: 1000, baseEjectionTimeMs: 2000 });
  const { b, s, fail } = clock(p);
  t.ok(fail(500));
  t.equal(s.ejectedUntil - s.ejectedAt, 2000, 'first: 1 × base');
  sweep(p, b, 3000);
  t.notOk(s.ejected, 'back at the sweep at 3000 (time up at 2500)');
  t.equal(s.ejections, 1, 'the sweep that returns it does not lower its multiplier');
  t.ok(fail(3100), 'fails at once, before the sweep at 4000');
  t.equal(s.ejections, 2);
  t.equal(s.ejectedUntil - s.ejectedAt, 4000, 'second: 2 × base');
  sweep(p, b, 7000);
  t.ok(s.ejected, 'still out at 7000 (time up at 7100)');
  sweep(p, b, 8000);
  t.notOk(s.ejected);
  t.ok(fail(8050));
  t.equal(s.ejectedUntil - s.ejectedAt, 6000, 'third: 3 × base');
});

t.test('Envoy: each sweep spent in service lowers the multiplier by one, so a later failure is ejected for less', async (t) => {
  const p = policy({ consecutive5xxErrors: 1, intervalMs: 1000, baseEjectionTimeMs: 2000 });
  const { b, s, fail } = clock(p);
  fail(500);
  sweep(p, b, 3000);
  fail(3100);
  sweep(p, b, 8000);
  t.notOk(s.ejected);
  t.equal(s.ejections, 2, 'returned at 8000 with multiplier 2');
  sweep(p, b, 9000);
  t.equal(s.ejections, 1, 'one sweep in service: 1');
  t.ok(fail(9500));
  t.equal(s.ejections, 2, 'ejected again: 2');
  t.equal(s.ejectedUntil - s.ejectedAt, 4000, 'for 2 × base, not 3 ×');
  sweep(p, b, 14_000);
  t.notOk(s.ejected);
  sweep(p, b, 16_000);
  t.equal(s.ejections, 0, 'two sweeps in service: 0');
  t.ok(fail(16_500));
  t.equal(s.ejectedUntil - s.ejectedAt, 2000, 'as long as the first time');
  sweep(p, b, 19_000);
  t.notOk(s.ejected);
  sweep(p, b, 20_000);
  t.equal(s.ejections, 0, 'never below 0');
});

t.test('Envoy: the multiplier stops one step past max_ejection_time (300 s), and decays from there', async (t) => {
  const p = policy({ consecutive5xxErrors: 1, intervalMs: 10_000, baseEjectionTimeMs: 30_000 });
  const { b, s, fail } = clock(p);
  const times: number[] = [];
  let at = 1;
  for (let i = 0; i < 15; i++) {
    t.ok(fail(at), `ejection ${i + 1}`);
    times.push((s.ejectedUntil - s.ejectedAt) / 1000);
    at = s.ejectedUntil + 10_000; // back at the sweep after its time, failing again before the next one
    sweep(p, b, at - 1);
    t.notOk(s.ejected);
  }
  t.same(times, [30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300, 300, 300, 300], 'base × n, capped at 300 s');
  t.equal(s.ejections, 11, 'the multiplier stopped at 11 (11 × 30 s ≥ 300 s + 30 s)');
  sweep(p, b, at - 1 + 10 * 10_000);
  t.equal(s.ejections, 1, 'ten sweeps in service: 11 → 1');
  t.ok(fail(at - 1 + 10 * 10_000 + 1));
  t.equal(s.ejectedUntil - s.ejectedAt, 60_000, 'ejected for 2 × base: not punished for the hours it failed');

  const big = policy({ consecutive5xxErrors: 1, intervalMs: 10_000, baseEjectionTimeMs: 400_000 });
  const c = clock(big);
  c.fail(1);
  t.equal(c.s.ejectedUntil - c.s.ejectedAt, 400_000, 'a base above 300 s is the cap itself (Envoy: max(300 s, base))');
  sweep(big, c.b, 400_001 + 10_000);
  c.fail(400_001 + 10_000 + 1);
  t.equal(c.s.ejections, 2);
  sweep(big, c.b, c.s.ejectedUntil + 10_000);
  t.notOk(c.s.ejected);
  t.ok(c.fail(c.s.ejectedAt + 400_000 + 10_001), 'back, and failing again before the next sweep');
  t.equal(c.s.ejections, 2, 'stops at 2 (2 × 400 s ≥ 400 s + 400 s)');
  t.equal(c.s.ejectedUntil - c.s.ejectedAt, 400_000);
});

t.test('the policy in force at the sweep decides the return (a new baseEjectionTime applies to an ejected endpoint)', async (t) => {
  const p = policy({ consecutive5xxErrors: 1, intervalMs: 1000, baseEjectionTimeMs: 10_000 });
  const { b, s, fail } = clock(p);
  fail(500);
  sweep(policy({ consecutive5xxErrors: 1, intervalMs: 1000, baseEjectionTimeMs: 2000 }), b, 3000);
  t.notOk(s.ejected, 'back at 3000 under the new 2 s base');
});

t.test('sweeps computed lazily, in one pass, equal sweeps run at every interval', async (t) => {
  const rand = seeded(7);
  const p = policy({ consecutive5xxErrors: 2, intervalMs: 1000, baseEjectionTimeMs: 1500, maxEjectionPercent: 100 });
  const every = new BackendState('every');
  const lazy = new BackendState('lazy');
  sweep(p, every, 0);
  sweep(p, lazy, 0);
  let now = 0;
  let tick = 1000;
  for (let i = 0; i < 3000; i++) {
    // mostly small steps, sometimes a long quiet spell
    now += rand() < 0.02 ? Math.floor(rand() * 120_000) : Math.floor(rand() * 700);
    for (; tick <= now; tick += 1000) sweep(p, every, tick);
    sweep(p, every, now);
    sweep(p, lazy, now);
    const id = `e${Math.floor(rand() * 3)}`;
    const status = rand() < 0.6 ? 500 : 200;
    const a = recordOutcome(p, every, every.endpoint(id), { status }, 3, now);
    const z = recordOutcome(p, lazy, lazy.endpoint(id), { status }, 3, now);
    if (a !== z) t.fail(`step ${i}: ejected ${a} vs ${z}`);
  }
  const view = (b: BackendState) => [...b.endpoints.values()].map((s) => [s.id, s.ejected, s.ejections, s.ejectionsTotal, s.ejected ? s.ejectedUntil : 0]);
  t.same(view(lazy), view(every), 'same ejections, multipliers and return times');
  t.ok(every.endpoint('e0').ejectionsTotal > 10, 'the scenario ejected often');
});
