// Circuit breaking, token buckets, fault decisions, fallback conditions and the policy table, on plain inputs.
import t from 'tap';

import type { Service } from '../../common/mesh.js';
import type { TrafficEntry } from '../../common/policy.js';
import type { CompiledTraffic } from '../../common/policy/traffic.js';
import { BackendState } from '../../agent/traffic/backend-state.js';
import { acquire, circuitOpen, isPending, type Slot } from '../../agent/traffic/circuit.js';
import { decideFault } from '../../agent/traffic/fault.js';
import { conditionsOf, shouldFallBack } from '../../agent/traffic/fallback.js';
import { bucketFor, capacityOf, retryAfterSeconds, TokenBucket } from '../../agent/traffic/rate-limit.js';
import { TrafficTable } from '../../agent/traffic/table.js';
import { seeded } from './seeded.js';

t.test('circuit: over a limit refused at once and counted; release frees exactly once', async (t) => {
  const p = { maxConnections: 1 };
  const b = new BackendState('k');
  const e = b.endpoint('a');
  const s1 = acquire(p, b, e, 'tcp', false, 0) as Slot;
  t.ok(s1);
  t.equal(acquire(p, b, e, 'tcp', false, 0), undefined, 'second TCP connection refused');
  t.ok(circuitOpen(p, b));
  t.equal(b.overloaded, 1);
  s1.release();
  s1.release();
  t.equal(b.activeConnections, 0, 'double release is harmless');
  t.equal(e.outstanding, 0);
  const h = Array.from({ length: 20 }, () => acquire(p, b, e, 'http1', false, 0));
  t.equal(h.filter(Boolean).length, 1, 'HTTP/1.1: one request in flight per allowed connection, 19 refused');
  const p2 = { http2MaxRequests: 3, maxRetries: 1 };
  const b2 = new BackendState('k2');
  const e2 = b2.endpoint('a');
  t.equal([1, 2, 3, 4].map(() => acquire(p2, b2, e2, 'http2', false, 0)).filter(Boolean).length, 3);
  const b3 = new BackendState('k3');
  const r1 = acquire(p2, b3, b3.endpoint('a'), 'http2', true, 0);
  t.ok(r1);
  t.equal(acquire(p2, b3, b3.endpoint('a'), 'http2', true, 0), undefined, 'maxRetries 1: a second retry in flight refused');
  t.ok(acquire(p2, b3, b3.endpoint('a'), 'http2', false, 0), 'a first try still passes');
  t.ok(acquire(undefined, b3, b3.endpoint('a'), 'tcp', false, 0), 'no policy: no limit');
});

t.test('circuit: http1MaxPendingRequests queues HTTP/1.1 requests FIFO beyond maxConnections, bounded, cancellable', async (t) => {
  const p = { maxConnections: 1, http1MaxPendingRequests: 2 };
  const b = new BackendState('k');
  const e = b.endpoint('a');
  const first = acquire(p, b, e, 'http1', false, 0) as Slot;
  t.notOk(isPending(first), 'under the limit: a slot at once');
  const q1 = acquire(p, b, e, 'http1', false, 0)!;
  const q2 = acquire(p, b, e, 'http1', false, 0)!;
  t.ok(isPending(q1) && isPending(q2), 'maxConnections reached: the next two wait');
  t.equal(b.pending.length, 2);
  t.equal(acquire(p, b, e, 'http1', false, 0), undefined, 'the queue is full: refused at once');
  t.equal(b.overloaded, 1, 'and counted as overloaded');
  t.equal(acquire(p, b, e, 'tcp', false, 0) !== undefined, true, 'TCP connections are bounded separately and never queue');
  const order: string[] = [];
  if (!isPending(q1) || !isPending(q2)) return;
  void q1.wait.then((s) => order.push(s ? 'q1' : 'q1-none'));
  void q2.wait.then((s) => order.push(s ? 'q2' : 'q2-none'));
  t.equal(e.outstanding, 2, 'waiting requests are not outstanding on the endpoint (one HTTP/1.1 request and one TCP connection are)');
  first.release();
  t.equal(b.pending.length, 1, 'the released slot went to the oldest waiter, inside release()');
  t.equal(b.activeRequests, 1, 'and is held by it at once');
  t.equal(acquire(p, b, e, 'http1', false, 0) !== undefined && b.pending.length === 2, true, 'a newcomer queues behind the waiter, it cannot take a slot ahead of it');
  const s1 = await q1.wait;
  await Promise.resolve();
  t.same(order, ['q1'], 'first in, first out');
  q2.cancel();
  t.equal(b.pending.length, 1, 'a request that gives up leaves the queue');
  t.equal(await q2.wait, undefined, 'and gets no slot');
  t.equal(b.pending.cancelled, 1);
  (s1 as Slot).release();
  t.equal(b.pending.length, 0, 'the newcomer got the next slot');
  t.equal(b.activeRequests, 1);
  q2.cancel();
  t.equal(b.pending.cancelled, 1, 'cancelling twice is harmless');
  t.equal(b.overloaded, 1, 'waiting is not overloading');

  // a new config version raising the limit lets the waiters through at the next acquire
  const b2 = new BackendState('k2');
  const e2 = b2.endpoint('a');
  acquire(p, b2, e2, 'http1', false, 0);
  const w = acquire(p, b2, e2, 'http1', false, 0)!;
  t.ok(isPending(w));
  const more = acquire({ maxConnections: 3, http1MaxPendingRequests: 2 }, b2, e2, 'http1', false, 0);
  t.ok(more && !isPending(more), 'the raised limit has room for the newcomer');
  t.equal(b2.pending.length, 0, 'after the waiter was served first');
  t.ok(isPending(w) && (await w.wait), 'the waiter has its slot');

  // without http1MaxPendingRequests nothing waits (the behaviour before the queue)
  const b3 = new BackendState('k3');
  acquire({ maxConnections: 1 }, b3, b3.endpoint('a'), 'http1', false, 0);
  t.equal(acquire({ maxConnections: 1 }, b3, b3.endpoint('a'), 'http1', false, 0), undefined);
  // max_requests is not a connection shortage: refused at once even with a queue
  const b4 = new BackendState('k4');
  const p4 = { maxConnections: 5, http2MaxRequests: 1, http1MaxPendingRequests: 5 };
  acquire(p4, b4, b4.endpoint('a'), 'http1', false, 0);
  t.equal(acquire(p4, b4, b4.endpoint('a'), 'http1', false, 0), undefined, 'http2MaxRequests reached: 503 at once');
});

t.test('token bucket: burst then the steady rate; tokens survive a reconfiguration', async (t) => {
  const tb = new TokenBucket(10, capacityOf({ requestsPerSecond: 10, burst: 5 }), 0);
  let ok = 0;
  for (let i = 0; i < 20; i++) if (tb.take(0) === 0) ok++;
  t.equal(ok, 5, 'burst of 5 at once');
  t.equal(tb.take(0), 100, '100 ms until the next token');
  t.equal(tb.take(100), 0);
  // over 10 s at 1000 req/s offered: 10 × 10 + 5 pass
  let passed = 0;
  const tb2 = new TokenBucket(10, 5, 0);
  for (let ms = 0; ms < 10_000; ms++) if (tb2.take(ms) === 0) passed++;
  t.ok(passed >= 104 && passed <= 106, `passed ${passed} ≈ 105`);
  tb2.reconfigure(10, 2);
  t.ok(tb2.available <= 2);
  t.equal(capacityOf({ requestsPerSecond: 5, burst: 0 }), 1);
  t.equal(retryAfterSeconds(100), 1);
  t.equal(retryAfterSeconds(2500), 3);
  const rl = { requestsPerSecond: 10, burst: 0, perPrincipal: [{ principals: ['spiffe://td/ns/a/sa/b'], requestsPerSecond: 1, burst: 0 }] };
  t.equal(bucketFor(rl, 'spiffe://td/ns/a/sa/b').index, 0);
  t.equal(bucketFor(rl, 'spiffe://td/ns/a/sa/c').index, -1);
  t.equal(bucketFor(rl, undefined).bucket, rl);
});

t.test('fault: each at its percentage, independently; no percentage, no fault', async (t) => {
  const rand = seeded(11);
  let delayed = 0;
  let aborted = 0;
  const N = 10_000;
  for (let i = 0; i < N; i++) {
    const d = decideFault({ delay: { delayMs: 300, percent: 10 }, abort: { httpStatus: 503, percent: 5 } }, rand);
    if (d?.delayMs) delayed++;
    if (d?.abort) aborted++;
  }
  t.ok(Math.abs(delayed / N - 0.1) < 0.01, `delayed ${delayed}`);
  t.ok(Math.abs(aborted / N - 0.05) < 0.01, `aborted ${aborted}`);
  t.equal(decideFault({ delay: { delayMs: 300, percent: 0 }, abort: { grpcStatus: 14, percent: 0 } }, rand), undefined);
  t.same(decideFault({ abort: { grpcStatus: 14, percent: 100 } }, rand), { delayMs: 0, abort: { grpcStatus: 14 } });
});

t.test('fallback conditions', async (t) => {
  t.same(conditionsOf({ status: 503 }), ['5xx', 'gateway-error']);
  t.same(conditionsOf({ status: 500 }), ['5xx']);
  t.same(conditionsOf({ status: 0, error: 'connect_failed' }), ['connect-failure']);
  t.same(conditionsOf({ status: 0, error: 'timeout' }), ['timeout']);
  t.same(conditionsOf({ status: 0, noHealthyEndpoint: true }), ['no-healthy-endpoint']);
  t.same(conditionsOf({ status: 0, overloaded: true }), ['overloaded']);
  const fb = { target: { kind: 'response' as const, status: 200, headers: [], body: '' }, on: ['timeout' as const] };
  t.notOk(shouldFallBack(fb, { status: 503 }));
  t.ok(shouldFallBack(fb, { status: 0, error: 'timeout' }));
  t.notOk(shouldFallBack({ target: { kind: 'service', service: 'a/b', port: 80, resolved: false }, on: ['5xx'] }, { status: 500 }), 'an unresolved fallback Service is not used');
});

t.test('policy table: port-specific over all-ports, then oldest, then name; rate-limited pods indexed', async (t) => {
  const svc: Service = { namespace: 'shop', name: 'cart', clusterIPs: ['10.97.0.1'], ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }, { port: 81, targetPort: 8081, protocol: 'TCP' }], endpoints: [{ ip: '10.98.1.5', node: 'node-1', ready: true }] };
  const entry = (name: string, tr: Partial<CompiledTraffic>): TrafficEntry => ({ kind: 'TrafficPolicy', key: `TrafficPolicy/shop/${name}`, namespace: 'shop', name, traffic: { service: 'shop/cart', createdMs: 0, loadBalancer: { kind: 'LEAST_REQUEST' }, problems: [], ...tr } });
  const table = new TrafficTable(
    [entry('old', { createdMs: 1 }), entry('young', { createdMs: 5 }), entry('port81', { createdMs: 9, port: 81, rateLimit: { requestsPerSecond: 1, burst: 0, perPrincipal: [] } })],
    [svc],
  );
  t.equal(table.forBackend('shop/cart:80')?.name, 'shop/old');
  t.equal(table.forBackend('shop/cart:81')?.name, 'shop/port81');
  t.equal(table.rateLimitsFor('10.98.1.5', 8081)?.[0]?.backend, 'shop/cart:81');
  t.equal(table.rateLimitsFor('10.98.1.5', 8080), undefined);
});
