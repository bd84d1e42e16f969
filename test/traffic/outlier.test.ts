// Outlier detection on plain inputs, Envoy's consecutive-error semantics: counters, ejection, the
// maxEjectionPercent floor of one, return at the first sweep after the ejection time, longer ejections
// while it keeps failing, the multiplier's decay while healthy, the 300 s cap.
import t from 'tap';

import type { CompiledOutlierDetection } from '../../common/policy/traffic.js';
import { BackendState } from '../../agent/traffic/backend-state.js';
import { ejectionTimeMs, outcomeStatus, recordOutcome, sweep } from '../../agent/traffic/outlier.js';

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
