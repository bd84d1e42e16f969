// Balancers on plain inputs: least request (P2C over peak EWMA × load) starves a slow endpoint, round robin
// is even and its cursor survives a new endpoint list, consistent hashing (Maglev) keeps keys in place,
// moves ≈ 1/N of them when one of N endpoints comes or goes, and ejected or tried endpoints are skipped.
import t from 'tap';

import { BackendState } from '../../agent/traffic/backend-state.js';
import { cookieValue, hashKey, pick, pickHashed, pickLeastRequest, pickRandom, pickRoundRobin } from '../../agent/traffic/balancer.js';
import { MaglevTable } from '../../agent/traffic/maglev.js';
import { seeded } from './seeded.js';

const eps = (n: number, base = 10) => Array.from({ length: n }, (_, i) => ({ id: `10.98.1.${base + i}:8080` }));

t.test('LEAST_REQUEST: an endpoint ten times slower gets well under 25% of requests', async (t) => {
  for (const interArrival of [0.2, 1, 5]) {
    const b = new BackendState('shop/cart:80');
    const list = eps(2);
    const latency = new Map([[list[0]!.id, 2], [list[1]!.id, 20]]);
    const rand = seeded(42);
    // virtual time: requests arrive every `interArrival` ms and complete after their endpoint's latency
    const done: { at: number; id: string }[] = [];
    const counts = new Map<string, number>();
    let now = performance.now();
    for (let i = 0; i < 5000; i++) {
      now += interArrival;
      done.sort((x, y) => x.at - y.at);
      while (done.length && done[0]!.at <= now) {
        const d = done.shift()!;
        const s = b.endpoint(d.id);
        s.outstanding--;
        s.observe(latency.get(d.id)!, d.at);
      }
      const ep = pickLeastRequest(list, b, [], rand, now)!;
      b.endpoint(ep.id).outstanding++;
      counts.set(ep.id, (counts.get(ep.id) ?? 0) + 1);
      done.push({ at: now + latency.get(ep.id)!, id: ep.id });
    }
    const slowShare = (counts.get(list[1]!.id) ?? 0) / 5000;
    t.ok(slowShare < 0.25, `inter-arrival ${interArrival} ms: slow endpoint share ${(slowShare * 100).toFixed(1)}% < 25%`);
    t.ok(slowShare > 0, 'the slow endpoint is not starved entirely under load');
  }
});

t.test('LEAST_REQUEST spreads equal endpoints about evenly and never picks a tried or ejected one', async (t) => {
  const b = new BackendState('k');
  const list = eps(4);
  const rand = seeded(1);
  const c = new Map<string, number>();
  for (let i = 0; i < 4000; i++) {
    const ep = pickLeastRequest(list, b, [], rand, 0)!;
    c.set(ep.id, (c.get(ep.id) ?? 0) + 1);
  }
  for (const ep of list) t.ok(Math.abs(c.get(ep.id)! - 1000) < 150, `${ep.id}: ${c.get(ep.id)}`);
  b.endpoint(list[0]!.id).ejected = true;
  for (let i = 0; i < 200; i++) {
    const ep = pickLeastRequest(list, b, [list[1]!.id], rand, 0)!;
    t.not(ep.id, list[0]!.id);
    t.not(ep.id, list[1]!.id);
  }
  for (const ep of list) b.endpoint(ep.id).ejected = true;
  t.equal(pickLeastRequest(list, b, [], rand, 0), undefined, 'all ejected: none');
});

t.test('ROUND_ROBIN is even, skips ejected, and its cursor survives a new endpoint list', async (t) => {
  const b = new BackendState('k');
  const list = eps(2);
  const seq = Array.from({ length: 10 }, () => pickRoundRobin(list, b, [])!.id);
  t.same(seq.filter((x) => x === list[0]!.id).length, 5, 'even split');
  const before = pickRoundRobin(list, b, [])!.id;
  const sameSetNewVersion = list.map((e) => ({ ...e }));
  const after = pickRoundRobin(sameSetNewVersion, b, [])!.id;
  t.not(after, before, 'a new config version does not restart the cursor');
  b.endpoint(list[0]!.id).ejected = true;
  for (let i = 0; i < 4; i++) t.equal(pickRoundRobin(list, b, [])!.id, list[1]!.id);
  t.equal(pickRoundRobin(list, b, [list[1]!.id]), undefined);
});

t.test('RANDOM is about even', async (t) => {
  const b = new BackendState('k');
  const list = eps(2);
  const rand = seeded(9);
  let first = 0;
  for (let i = 0; i < 2000; i++) if (pickRandom(list, b, [], rand)!.id === list[0]!.id) first++;
  t.ok(Math.abs(first - 1000) < 100, `${first}/2000`);
});

t.test('Maglev: balanced, and adding or removing one of N endpoints moves about 1/N of the keys', async (t) => {
  const N = 10;
  const ids = eps(N).map((e) => e.id).sort();
  const table = new MaglevTable(ids);
  const keys = Array.from({ length: 20000 }, (_, i) => `user-${i}`);
  const b = new BackendState('k');
  const list = ids.map((id) => ({ id }));
  const rand = seeded(3);
  const owner = new Map(keys.map((k) => [k, pickHashed(list, b, k, [], rand, 0)!.id]));
  const per = new Map<string, number>();
  for (const o of owner.values()) per.set(o, (per.get(o) ?? 0) + 1);
  for (const id of ids) t.ok(Math.abs(per.get(id)! / keys.length - 1 / N) < 0.02, `${id} owns ${(per.get(id)! / keys.length * 100).toFixed(1)}%`);
  t.equal(table.ids.length, N);

  // remove one endpoint (as an ejection would): its keys move, few others do
  b.endpoint(ids[3]!).ejected = true;
  let moved = 0;
  let movedOthers = 0;
  for (const k of keys) {
    const now = pickHashed(list, b, k, [], rand, 0)!.id;
    if (now !== owner.get(k)) {
      moved++;
      if (owner.get(k) !== ids[3]) movedOthers++;
    }
  }
  t.ok(moved / keys.length < 1.5 / N, `removing 1 of ${N}: ${(moved / keys.length * 100).toFixed(1)}% of keys moved`);
  t.ok(movedOthers / keys.length < 0.05, `keys of the other endpoints that moved: ${(movedOthers / keys.length * 100).toFixed(2)}%`);
  b.endpoint(ids[3]!).ejected = false;

  // add one endpoint
  const more = [...list, { id: '10.98.2.99:8080' }];
  let movedAdd = 0;
  for (const k of keys) if (pickHashed(more, b, k, [], rand, 0)!.id !== owner.get(k)) movedAdd++;
  t.ok(movedAdd / keys.length < 1.5 / (N + 1) && movedAdd / keys.length > 0.5 / (N + 1), `adding 1 to ${N}: ${(movedAdd / keys.length * 100).toFixed(1)}% moved`);

  // the same set in another order (a new config version): every key stays
  const shuffled = [...list].reverse().map((e) => ({ ...e }));
  t.ok(keys.every((k) => pickHashed(shuffled, b, k, [], rand, 0)!.id === owner.get(k)), 'same endpoint set, new version: no key moves');
  // a retry goes elsewhere
  const k0 = keys[0]!;
  t.not(pickHashed(list, b, k0, [owner.get(k0)!], rand, 0)!.id, owner.get(k0));
});

t.test('hash keys: header, cookie, source IP; without one LEAST_REQUEST decides', async (t) => {
  const input = (h: Record<string, string>) => ({ header: (n: string) => h[n], sourceIp: '10.98.1.5' });
  t.equal(hashKey({ kind: 'HASH_HEADER', header: 'x-user' }, input({ 'x-user': 'ann' })), 'ann');
  t.equal(hashKey({ kind: 'HASH_COOKIE', cookie: 'sticky', ttlMs: 0 }, input({ cookie: 'a=1; sticky=abc; b=2' })), 'abc');
  t.equal(hashKey({ kind: 'HASH_COOKIE', cookie: 'sticky', ttlMs: 0 }, input({ cookie: 'a=1' })), undefined);
  t.equal(hashKey({ kind: 'HASH_SOURCE_IP' }, input({})), '10.98.1.5');
  t.equal(hashKey({ kind: 'LEAST_REQUEST' }, input({ 'x-user': 'ann' })), undefined);
  t.equal(cookieValue(undefined, 'x'), undefined);
  const b = new BackendState('k');
  const list = eps(3);
  const rand = seeded(5);
  const lb = { kind: 'HASH_HEADER', header: 'x-user' } as const;
  const first = pick(lb, list, b, 'ann', [], rand, 0)!.id;
  for (let i = 0; i < 100; i++) t.equal(pick(lb, list, b, 'ann', [], rand, 0)!.id, first);
  t.ok(pick(lb, list, b, undefined, [], rand, 0), 'no key: still picks');
});
