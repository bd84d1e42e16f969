// Retry decisions (route retry, TrafficPolicy retryOn, the default) and Linkerd's retry budget.
import t from 'tap';

import { RetryBudget, DEFAULT_RETRY_BUDGET } from '../../agent/routing/budget.js';
import { backoffMs, decideRetry, DEFAULT_RETRY_RULE, retriable, routeRetryRule, trafficRetryRule, type TryResult } from '../../agent/routing/retry.js';
import { modifyPath, redirectLocation } from '../../agent/routing/rewrite.js';

const ok = (status: number, grpcStatus?: number): TryResult => ({ status, sent: true, ...(grpcStatus !== undefined ? { grpcStatus } : {}) });
const fail = (error: string, sent: boolean): TryResult => ({ status: 0, error, sent });

t.test('what each rule retries', async (t) => {
  const route = routeRetryRule({ attempts: 3, codes: [500, 503], backoffMs: 0 });
  const tp = trafficRetryRule({ attempts: 2, retryOn: ['gateway-error', 'unavailable', 'cancelled', 'internal', '429'] });
  const tp5xx = trafficRetryRule({ attempts: 2, retryOn: ['5xx'] });
  const tpConn = trafficRetryRule({ attempts: 2, retryOn: ['connect-failure'] });
  const cases: [string, Parameters<typeof retriable>[0], TryResult, boolean][] = [
    ['route: listed code', route, ok(503), true],
    ['route: code not listed', route, ok(502), false],
    ['route: 200', route, ok(200), false],
    ['route: connect failure', route, fail('connect_failed', false), true],
    ['route: reset after sending', route, fail('reset', true), true],
    ['route: per-try timeout', route, fail('timeout', true), true],
    ['route: denied is final', route, fail('denied', false), false],
    ['route: overloaded is final', route, fail('overloaded', false), false],
    ['route: unresolved backend is final', route, fail('no_backend', false), false],
    ['tp gateway-error 502', tp, ok(502), true],
    ['tp gateway-error 500', tp, ok(500), false],
    ['tp numeric 429', tp, ok(429), true],
    ['tp grpc unavailable (14)', tp, ok(200, 14), true],
    ['tp grpc internal (13)', tp, ok(200, 13), true],
    ['tp grpc not-found (5)', tp, ok(200, 5), false],
    ['tp grpc ok', tp, ok(200, 0), false],
    ['tp no connection condition', tp, fail('connect_failed', false), false],
    ['tp 5xx: 500', tp5xx, ok(500), true],
    ['tp 5xx: reset', tp5xx, fail('reset', true), true],
    ['tp connect-failure', tpConn, fail('connect_failed', false), true],
    ['default: connect failed before a byte', DEFAULT_RETRY_RULE, fail('connect_failed', false), true],
    ['default: tunnel stream refused', DEFAULT_RETRY_RULE, fail('tunnel_stream', false), true],
    ['default: reset after sending', DEFAULT_RETRY_RULE, fail('reset', true), false],
    ['default: 503', DEFAULT_RETRY_RULE, ok(503), false],
  ];
  for (const [why, rule, r, want] of cases) t.equal(retriable(rule, r), want, why);
});

t.test('attempts count retries after the first try (GEP-1731, conformance httproute-retry)', async (t) => {
  const budget = new RetryBudget({ percent: 100, minRetriesPerSecond: 1000, intervalMs: 10_000 });
  const rule = routeRetryRule({ attempts: 3, codes: [500], backoffMs: 0 });
  // succeedAfter 2 → try 3 succeeds: allowed; succeedAfter 4 → needs a 5th try: refused after the 4th
  t.same([1, 2, 3].map((a) => decideRetry(rule, a, ok(500), budget).retry), [true, true, true]);
  t.same(decideRetry(rule, 4, ok(500), budget), { retry: false, reason: 'attempts_exhausted' });
  t.same(decideRetry(rule, 1, ok(503), budget), { retry: false, reason: 'not_retriable' });
  t.same(decideRetry(DEFAULT_RETRY_RULE, 2, fail('connect_failed', false), budget), { retry: false, reason: 'attempts_exhausted' }, 'the default retries once');
});

t.test('backoff: the minimum, exponential jitter above it, capped at 10x', async (t) => {
  t.equal(backoffMs(0, 3), 0);
  t.equal(backoffMs(100, 1, () => 0.99), 100, 'first retry waits the minimum');
  t.equal(backoffMs(100, 2, () => 0), 100);
  t.equal(backoffMs(100, 2, () => 1), 200);
  t.equal(backoffMs(100, 3, () => 1), 400);
  t.equal(backoffMs(100, 10, () => 1), 1000, 'capped at 10 x base');
  t.ok(Array.from({ length: 200 }, () => backoffMs(25, 4)).every((d) => d >= 25 && d <= 200), 'never below the minimum, never above base x 2^(n-1)');
});

t.test('retry budget: floor plus percent of the window, sliding', async (t) => {
  let now = 0;
  const b = new RetryBudget(DEFAULT_RETRY_BUDGET, () => now);
  // idle service: the floor (10/s over 10 s = 100 retries) and not one more
  let n = 0;
  while (b.withdraw()) n++;
  t.equal(n, 100, 'floor: minRetriesPerSecond x interval');
  now += 10_000; // the window slides past those retries
  for (let i = 0; i < 1000; i++) b.deposit();
  n = 0;
  while (b.withdraw()) n++;
  t.equal(n, 100 + 200, 'floor + 20% of 1000 requests');
  now += 5_000;
  t.notOk(b.withdraw(), 'half a window later the retries still count');
  now += 5_001;
  t.ok(b.withdraw(), 'a window later they have left it');
  b.configure({ percent: 0, minRetriesPerSecond: 0, intervalMs: 10_000 });
  t.notOk(b.withdraw(), 'a zero budget pays for nothing');

  const big = new RetryBudget({ percent: 100, minRetriesPerSecond: 0, intervalMs: 1000 }, () => now);
  for (let i = 0; i < 10; i++) big.deposit();
  const rule = routeRetryRule({ attempts: 3, codes: [503], backoffMs: 0 });
  const v = Array.from({ length: 12 }, () => decideRetry(rule, 1, ok(503), big));
  t.equal(v.filter((x) => x.retry).length, 10, 'decideRetry pays from the budget');
  t.same(v[11], { retry: false, reason: 'budget_exhausted' });
});

t.test('rewrite and redirect (Gateway API tables)', async (t) => {
  const rp = (value: string) => ({ type: 'ReplacePrefixMatch' as const, value });
  const cases: [string, string, string, string][] = [
    ['/foo', '/foo/bar', '/xyz', '/xyz/bar'],
    ['/foo', '/foo/bar', '/xyz/', '/xyz/bar'],
    ['/foo/', '/foo/bar', '/xyz', '/xyz/bar'],
    ['/foo/', '/foo/bar', '/xyz/', '/xyz/bar'],
    ['/foo', '/foo', '/xyz', '/xyz'],
    ['/foo', '/foo/', '/xyz', '/xyz/'],
    ['/foo/', '/foo/', '/xyz', '/xyz/'],
    ['/foo', '/foo', '/', '/'],
    ['/foo', '/foo/', '/', '/'],
    ['/foo', '/foo/bar', '/', '/bar'],
  ];
  for (const [prefix, path, repl, want] of cases) t.equal(modifyPath(path, rp(repl), prefix), want, `${prefix} ${path} -> ${repl}`);
  t.equal(modifyPath('/a/b', { type: 'ReplaceFullPath', value: '/one' }, '/a'), '/one');
  const base = { scheme: 'http' as const, authority: 'echo', path: '/p', search: '?q=1', port: 80 };
  const redir = (f: Record<string, unknown>, r = base) => redirectLocation({ type: 'RequestRedirect', statusCode: 302, ...f }, r, '/p');
  t.equal(redir({}), 'http://echo/p?q=1', 'defaults: same scheme, host, port 80 left out, query kept');
  t.equal(redir({ hostname: 'example.org' }), 'http://example.org/p?q=1');
  t.equal(redir({ scheme: 'https' }), 'https://echo/p?q=1', 'scheme change: its well-known port, left out');
  t.equal(redir({ port: 8443, scheme: 'https' }), 'https://echo:8443/p?q=1');
  t.equal(redir({}, { ...base, authority: 'echo:8080', port: 8080 }), 'http://echo:8080/p?q=1', 'the request port kept');
  t.equal(redir({ path: rp('/new') }, { ...base, path: '/p/x' }), 'http://echo/new/x?q=1');
  t.equal(redir({ path: { type: 'ReplaceFullPath', value: '/full' } }), 'http://echo/full?q=1');
});
