// TrafficPolicy end to end (issue 13) on a real two-node sandbox, with unmodified curl in meshed pods and
// plain HTTP servers (fixtures/traffic-server.ts) as replicas: outlier ejection of an always-500 replica
// and its longer re-ejection, least request vs round robin with a replica ten times slower, consistent
// hashing on a header across a config version, maxConnections 1 under 20 concurrent slow requests (and
// with a pending queue of 3 under 10), the destination's local rate limit shared by two callers, fault delay/abort percentages over 1,000
// requests, and fallback (no endpoints, 503). Policies are changed with `weft apply` as an operator would.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { startSandbox, uniqueSandboxId, type SandboxHandle } from '../../sandbox/api.js';
import { weft } from '../helpers/sandbox.js';
import { scrapeAll, sum, type Scrape } from './mesh-probe.js';
import { NS, policy, SPEC } from './traffic-spec.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-traffic-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const id = uniqueSandboxId();
function down(): void {
  const r = weft(['sandbox', 'down', '--id', id], { timeoutMs: 180_000 });
  if (r.status !== 0) console.error(`sandbox down --id ${id} failed: ${r.stderr}`);
}
t.teardown(down);

let sb: SandboxHandle;
try {
  sb = await startSandbox({ id, spec: SPEC, nodes: 2 });
} catch (err) {
  down();
  throw err;
}
const status = sb.status();
const metricsUrls = Object.fromEntries(status.nodes.map((n) => [n.name, n.agent.metrics!]));
const controller = status.controller.web!.replace(/\/$/, '');
const host = (svc: string) => `${svc}.${NS}.svc.cluster.local`;

interface Transfer {
  code: number;
  seconds: number;
  pod: string | undefined;
  overloaded: string;
  fallback: string;
  retryAfter: string;
  body: string;
}

const MARK = '~~%{http_code} %{time_total} o=%header{x-weft-overloaded} f=%header{x-weft-fallback} r=%header{retry-after}~~\\n';

/** curl (unmodified) from a pod: n requests (URL globbing), optionally in parallel; one Transfer each. */
async function curl(pod: string, svc: string, n: number, opts: { parallel?: number; headers?: string[]; query?: string } = {}): Promise<Transfer[]> {
  const url = `http://${host(svc)}/?${opts.query ? `${opts.query}&` : ''}i=[1-${n}]`;
  const argv = ['curl', '-s', '--max-time', '30', '-w', MARK, ...(opts.parallel ? ['-Z', '--parallel-immediate', '--parallel-max', String(opts.parallel)] : []), ...(opts.headers ?? []).flatMap((h) => ['-H', h]), url];
  const r = await sb.exec(`${NS}/${pod}`, argv, { timeoutMs: 300_000 });
  const out: Transfer[] = [];
  let last = 0;
  for (const m of r.stdout.matchAll(/~~(\d+) ([\d.]+) o=(\S*) f=(\S*) r=(\S*)~~\n/g)) {
    const body = r.stdout.slice(last, m.index);
    last = m.index + m[0].length;
    out.push({ code: Number(m[1]), seconds: Number(m[2]), pod: /"pod":"([^"]+)"/.exec(body)?.[1], overloaded: m[3]!, fallback: m[4]!, retryAfter: m[5]!, body });
  }
  return out;
}

function apply(t: Test, yaml: string): void {
  const f = join(dir, `apply-${Date.now()}.yaml`);
  writeFileSync(f, yaml);
  const r = weft(['apply', '-f', f, '--controller', controller]);
  t.equal(r.status, 0, `weft apply: ${r.stderr}${r.stdout}`);
}

const metric = async (node: string, name: string, labels: Record<string, string>): Promise<number> => sum((await scrapeAll(metricsUrls))[node] as Scrape, name, labels);
/** The metric once it reaches `want`, polled for up to 3 s (whatever it is then). */
const metricAtLeast = async (node: string, name: string, labels: Record<string, string>, want: number): Promise<number> => {
  const end = Date.now() + 3000;
  let v = await metric(node, name, labels);
  while (v < want && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    v = await metric(node, name, labels);
  }
  return v;
};
const count = (xs: Transfer[], f: (x: Transfer) => boolean) => xs.filter(f).length;

// The servers start with the sandbox: wait until each Service answers through the mesh.
try {
  for (const svc of ['trio', 'duo', 'hashy', 'lim', 'faulty', 'generic', 'queue']) {
    let ok = false;
    for (let i = 0; i < 60 && !ok; i++) {
      ok = (await curl('client', svc, 1))[0]?.code === 200;
      if (!ok) await sleep(500);
    }
    if (!ok) throw new Error(`${svc} never answered through the mesh`);
  }
} catch (err) {
  down();
  throw err;
}

/** node-1's view of the trio endpoint outlier detection has ejected (weft config dump node-1 endpoints -o json). */
function ejectedEndpoint(t: Test): { id: string; ejections: number; since: number; until: number } | undefined {
  const r = weft(['config', 'dump', 'node-1', 'endpoints', '-o', 'json', '--sandbox', id]);
  t.equal(r.status, 0, `weft config dump: ${r.stderr}`);
  const per = JSON.parse(r.stdout) as { node: string; data: { backends: { backend: string; endpoints: { id: string; ejected: boolean; ejections: number; ejectedSince: string | null; ejectedUntil: string | null }[] }[] } }[];
  const e = per[0]?.data.backends.find((b) => b.backend === 'tr/trio:80')?.endpoints.find((x) => x.ejected);
  return e ? { id: e.id, ejections: e.ejections, since: Date.parse(e.ejectedSince!), until: Date.parse(e.ejectedUntil!) } : undefined;
}

t.test('outlier detection: the always-500 replica is ejected, comes back after its time, and is ejected for longer', async (t) => {
  const trio = 'tr/trio:80';
  const ejectedNow = async () => (await metric('node-1', 'weft_traffic_endpoint_ejected', { backend: trio })) >= 1;
  // Requests until the bad replica has answered 3 × 500 in a row and is ejected.
  let ejected = false;
  for (let i = 0; i < 40 && !ejected; i++) {
    await curl('client', 'trio', 10);
    ejected = await ejectedNow();
  }
  t.ok(ejected, 'the 500 replica is ejected');
  const first = ejectedEndpoint(t);
  t.equal(first?.ejections, 1, 'first ejection: multiplier 1');
  t.ok(first && Math.abs(first.until - first.since - 8000) <= 2, 'for baseEjectionTime (8 s)');
  const after = await curl('client', 'trio', 200);
  const ok = count(after, (x) => x.code === 200);
  t.ok(ok >= 0.98 * 200, `${ok}/200 succeed after the ejection (want >= 98%)`);
  t.equal(count(after, (x) => x.pod === 'bad'), 0, 'none reach the ejected replica');
  // It returns at the first sweep (3 s interval) after its 8 s. Polled closely (a scrape runs the sweeps due),
  // so that it is hit again at once: Envoy lowers the multiplier at each sweep an endpoint spends in service,
  // and it must fail again before the next one to be ejected for 2 × 8 s.
  let back = false;
  while (!back && Date.now() < (first?.until ?? 0) + 3000 + 5000) {
    await sleep(100);
    back = !(await ejectedNow());
  }
  t.ok(back, 'back in service after its ejection time');
  t.ok(Date.now() >= (first?.until ?? Infinity), 'not before it');
  const hit = await curl('client', 'trio', 10);
  t.ok(count(hit, (x) => x.code === 500) >= 1, 'it gets requests again (and still fails)');
  let again = false;
  for (let i = 0; i < 20 && !again; i++) {
    again = (await metric('node-1', 'weft_traffic_ejections_total', { backend: trio })) >= 2;
    if (!again) await curl('client', 'trio', 10);
  }
  t.ok(again, 'ejected a second time');
  const second = ejectedEndpoint(t);
  t.equal(second?.id, first?.id, 'the same replica');
  t.equal(second?.ejections, 2, 'multiplier 2: it failed again before a sweep in service');
  t.ok(second && Math.abs(second.until - second.since - 16_000) <= 2, 'for 2 × 8 s');
  // With multiplier 1 it would be back at the first sweep after 8 s, at the latest 11 s after its ejection.
  await sleep(Math.max(0, (second?.since ?? 0) + 12_500 - Date.now()));
  t.ok(await ejectedNow(), 'still out 12.5 s after its second ejection: the second ejection is longer than the first');
  let backAgain = false;
  while (!backAgain && Date.now() < (second?.until ?? 0) + 3000 + 5000) {
    await sleep(200);
    backAgain = !(await ejectedNow());
  }
  t.ok(backAgain && Date.now() >= (second?.until ?? Infinity), 'and back after its 16 s');
});

t.test('LEAST_REQUEST: a replica ten times slower gets < 25%; ROUND_ROBIN splits evenly', async (t) => {
  const lr = await curl('client', 'duo', 200, { parallel: 4 });
  const slow = count(lr, (x) => x.pod === 'slow');
  t.equal(count(lr, (x) => x.code === 200), 200);
  t.ok(slow / 200 < 0.25, `LEAST_REQUEST (default): slow replica got ${slow}/200`);
  apply(t, policy('duo', '  loadBalancer: { simple: ROUND_ROBIN }\n'));
  // wait for the new version on node-1: round robin alternates
  let rr: Transfer[] = [];
  for (let i = 0; i < 40; i++) {
    rr = await curl('client', 'duo', 200);
    if (Math.abs(count(rr, (x) => x.pod === 'slow') - 100) <= 5) break;
    await sleep(500);
  }
  const s = count(rr, (x) => x.pod === 'slow');
  t.ok(Math.abs(s - 100) <= 5, `ROUND_ROBIN: slow ${s}/200, fast ${count(rr, (x) => x.pod === 'fast')}/200`);
});

t.test('consistent hash on a header: each value on one endpoint over 100 requests, and across a config version', async (t) => {
  const owner = new Map<string, string>();
  for (const user of ['ann', 'bob', 'cyd', 'dee', 'eve', 'fay', 'gus', 'hal']) {
    const xs = await curl('client', 'hashy', 100, { headers: [`x-user: ${user}`] });
    const pods = new Set(xs.map((x) => x.pod));
    t.equal(pods.size, 1, `${user}: one endpoint (${[...pods].join(',')}) over 100 requests`);
    owner.set(user, [...pods][0]!);
  }
  t.ok(new Set(owner.values()).size >= 2, 'the values spread over the endpoints');
  const before = await metric('node-1', 'weft_config_version', {});
  apply(t, policy('hashy', '  loadBalancer: { consistentHash: { httpHeaderName: x-user } }\n  connectionPool: { tcp: { maxConnections: 1000 } }\n'));
  for (let i = 0; i < 60 && (await metric('node-1', 'weft_config_version', {})) <= before; i++) await sleep(250);
  t.ok((await metric('node-1', 'weft_config_version', {})) > before, 'a new config version is in force');
  for (const [user, pod] of owner) {
    const xs = await curl('client', 'hashy', 20, { headers: [`x-user: ${user}`] });
    t.same([...new Set(xs.map((x) => x.pod))], [pod], `${user}: still ${pod} after the new version`);
  }
});

t.test('maxConnections 1: of 20 concurrent slow requests the excess is answered 503 x-weft-overloaded at once', async (t) => {
  const xs = await curl('client', 'gate', 20, { parallel: 20 });
  const ok = xs.filter((x) => x.code === 200);
  const over = xs.filter((x) => x.code === 503 && x.overloaded === 'true');
  t.ok(ok.length >= 1 && ok.length <= 2, `${ok.length} went through (one at a time; a second may start after the first ends)`);
  t.ok(over.length >= 18, `${over.length} answered 503 + x-weft-overloaded`);
  t.ok(over.every((x) => x.seconds < 1), `overloaded answers came at once (slowest ${Math.max(...over.map((x) => x.seconds))} s; the server takes 2 s)`);
  t.ok((await metricAtLeast('node-1', 'weft_traffic_overloaded_total', { backend: 'tr/gate:80' }, 18)) >= 18, 'counted');
});

t.test('http1MaxPendingRequests 3 behind maxConnections 1: of 10 concurrent slow requests 4 are served one after another, 6 refused at once', async (t) => {
  const xs = await curl('client', 'queue', 10, { parallel: 10 });
  const ok = xs.filter((x) => x.code === 200).sort((a, b) => a.seconds - b.seconds);
  const over = xs.filter((x) => x.code === 503 && x.overloaded === 'true');
  t.equal(ok.length, 4, 'one in flight and three waiting were served');
  t.equal(over.length, 6, 'the rest answered 503 + x-weft-overloaded');
  t.ok(over.every((x) => x.seconds < 1), `refused at once (slowest ${Math.max(...over.map((x) => x.seconds))} s; the server takes 1 s)`);
  t.ok(ok[3]!.seconds >= 3.5, `the waiting ones went one at a time over the one connection (the last after ${ok[3]?.seconds} s)`);
  t.ok((await metricAtLeast('node-1', 'weft_traffic_overloaded_total', { backend: 'tr/queue:80' }, 6)) >= 6, 'the refusals counted');
});

t.test('local rate limit: the destination pod bucket is shared by two callers on two nodes, 429 + retry-after, counted per caller', async (t) => {
  const t0 = Date.now();
  const [a, b] = await Promise.all([curl('client', 'lim', 40, { parallel: 2 }), curl('client2', 'lim', 40, { parallel: 2 })]);
  const elapsed = (Date.now() - t0) / 1000;
  const all = [...a, ...b];
  const passed = count(all, (x) => x.code === 200);
  const limited = all.filter((x) => x.code === 429);
  t.equal(passed + limited.length, 80, 'every request answered 200 or 429');
  t.ok(passed <= 5 + Math.ceil(5 * elapsed) + 1, `${passed} passed in ${elapsed.toFixed(1)} s: at most 5/s + burst 5, summed over both callers (same node and cross node)`);
  t.ok(passed >= 5, 'at least the burst passed');
  t.ok(count(a, (x) => x.code === 429) > 0 && count(b, (x) => x.code === 429) > 0, 'both callers were limited');
  t.ok(limited.every((x) => Number(x.retryAfter) >= 1), '429s carry retry-after');
  for (const sa of ['client', 'client2']) {
    const n = await metricAtLeast('node-1', 'weft_traffic_rate_limited_total', { policy: 'tr/lim', source_principal: `spiffe://cluster.local/ns/${NS}/sa/${sa}` }, 1);
    t.ok(n > 0, `rejections of ${sa} counted (${n})`);
  }
});

t.test('fault injection: 10% delayed 1.5 s, 5% aborted 418, over 1,000 requests', async (t) => {
  const xs = await curl('client', 'faulty', 1000, { parallel: 20 });
  t.equal(xs.length, 1000);
  const aborted = count(xs, (x) => x.code === 418);
  // a delay long enough that a slow moment of a loaded machine is not mistaken for one
  const delayed = count(xs, (x) => x.code === 200 && x.seconds >= 1.5);
  // ±3 percentage points: more than 3 standard deviations of a binomial at these sizes
  t.ok(Math.abs(aborted / 1000 - 0.05) <= 0.03, `aborted ${aborted}/1000 (want 5% ± 3)`);
  // a delayed request may also be aborted (independent draws, as Istio): count delays among all answers
  const delayedAll = count(xs, (x) => x.seconds >= 1.5);
  t.ok(Math.abs(delayedAll / 1000 - 0.1) <= 0.03, `delayed ${delayedAll}/1000 (want 10% ± 3; ${delayed} of them answered 200)`);
});

t.test('fallback: a fixed answer when the Service has no endpoints; another Service when the primary answers 503 or times out', async (t) => {
  const none = await curl('client', 'nobody', 3);
  t.same(none.map((x) => [x.code, x.fallback, x.body.trim()]), Array(3).fill([200, 'response', 'generic answer']));
  const broken = await curl('client', 'broken', 5);
  t.same(broken.map((x) => [x.code, x.fallback, x.pod]), Array(5).fill([200, 'tr/generic', 'ok-b']), 'the 503 replaced by the fallback Service (cross node)');
  // counted when the proxy finishes the exchange, which may be just after curl has its answer
  t.ok((await metricAtLeast('node-1', 'weft_traffic_fallbacks_total', { backend: 'tr/broken:80', target: 'tr/generic' }, 5)) >= 5, 'counted');
  // the primary answers in 2 s, its request timeout is 500 ms: the fallback answers instead
  const late = await curl('client', 'sluggish', 3);
  t.same(late.map((x) => [x.code, x.fallback, x.pod]), Array(3).fill([200, 'tr/generic', 'ok-b']), 'the timed-out request answered by the fallback Service');
  t.ok(late.every((x) => x.seconds < 1.5), `soon after the 500 ms timeout, not after the primary's 2 s (slowest ${Math.max(...late.map((x) => x.seconds))} s)`);
  t.ok((await metricAtLeast('node-1', 'weft_traffic_fallbacks_total', { backend: 'tr/sluggish:80', target: 'tr/generic' }, 3)) >= 3, 'counted');
});
