// The bench harness itself (no sandbox, a few seconds): the open-loop generator against a loopback server,
// including that a stalled response is charged to the requests queued behind it (no coordinated
// omission); the HTTP/1.1 response parser; wrk/h2load output parsing; pairing against direct, target
// evaluation and the README table.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';

import { ResponseParser } from '../../bench/load/http1-client.js';
import { openLoop } from '../../bench/load/open-loop.js';
import { churn } from '../../bench/load/closed-loop.js';
import { renderReport, spliceReadme, RESULTS_START, RESULTS_END } from '../../bench/report.js';
import type { BenchPath } from '../../bench/paths.js';
import type { Measurement } from '../../bench/scenarios.js';
import { topFunctions } from '../../bench/profile.js';
import { latencyHistogram, percentiles, spread } from '../../bench/stats.js';
import { evaluateTargets, summarize, type Runs, type ScenarioSummary } from '../../bench/summary.js';
import { baselineFrom } from '../../bench/targets.js';
import { FEATURES } from '../../bench/features/index.js';
import { featureTable } from '../../bench/features/run.js';
import type { FeatureContext } from '../../bench/features/types.js';
import { parseObjects } from '../../controller/sources/yaml-objects.js';
import { durationUs, parseH2load, parseWrk } from '../../bench/tools.js';

async function server(handler: http.RequestListener): Promise<{ port: number; close: () => Promise<void> }> {
  const s = http.createServer({ keepAlive: true }, handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { port: (s.address() as AddressInfo).port, close: () => new Promise((r) => { s.closeAllConnections(); s.close(() => r()); }) };
}

t.test('open loop: every scheduled request answered, latencies recorded', async (t) => {
  const body = 'a'.repeat(1024);
  const srv = await server((_q, r) => r.end(body));
  t.teardown(srv.close);
  const r = await openLoop({ target: { host: '127.0.0.1', port: srv.port, path: '/' }, rate: 200, connections: 4, durationMs: 500, warmupMs: 100 });
  t.equal(r.scheduled, 100, '200 rps for 0.5 s');
  t.equal(r.completed, 100);
  t.equal(r.errors, 0);
  t.ok(r.completedTotal >= r.completed, 'warm-up counted in the total');
  t.equal(r.latencyUs.count, 100);
  t.ok(r.latencyUs.p50 > 0 && r.latencyUs.p50 <= r.latencyUs.p99 && r.latencyUs.p99 <= r.latencyUs.max);
});

t.test('open loop: a stalled response is charged to the requests queued behind it', async (t) => {
  let n = 0;
  const srv = await server((_q, r) => {
    if (++n === 5) setTimeout(() => r.end('late'), 300);
    else r.end('ok');
  });
  t.teardown(srv.close);
  const r = await openLoop({ target: { host: '127.0.0.1', port: srv.port, path: '/' }, rate: 100, connections: 1, durationMs: 1000, warmupMs: 0 });
  t.equal(r.errors, 0);
  // ~30 requests were due during the 300 ms stall: from their due time they waited; from the moment they
  // were written (what a closed-loop tool measures) they did not.
  t.ok(r.latencyUs.p90 >= 50_000, `p90 from due time includes the queueing (${r.latencyUs.p90} µs)`);
  t.ok(r.serviceUs.p90 < 50_000, `service time p90 does not (${r.serviceUs.p90} µs)`);
});

t.test('churn: a new connection per request', async (t) => {
  // Requests per server-side socket (a client port can be reused by the next connection, so not by port).
  const perSocket = new WeakMap<object, number>();
  let reused = 0;
  const srv = await server((q, r) => {
    const n = (perSocket.get(q.socket) ?? 0) + 1;
    perSocket.set(q.socket, n);
    if (n > 1) reused++;
    r.end('ok');
  });
  t.teardown(srv.close);
  const r = await churn({ target: { host: '127.0.0.1', port: srv.port, path: '/' }, concurrency: 2, durationMs: 200, warmupMs: 0 });
  t.equal(r.errors, 0);
  t.ok(r.completed > 5);
  t.equal(reused, 0, 'each request came on its own connection');
});

t.test('response parser: content-length and chunked, split anywhere', async (t) => {
  const wire = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nx-trailer: 1\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n');
  for (const step of [1, 3, 7, wire.length]) {
    const p = new ResponseParser();
    const got = [];
    for (let i = 0; i < wire.length; i += step) {
      let r = p.push(wire.subarray(i, i + step));
      while (r) {
        got.push(r);
        r = p.push(Buffer.alloc(0));
      }
    }
    t.same(got, [{ status: 200, bodyBytes: 5 }, { status: 201, bodyBytes: 5 }, { status: 204, bodyBytes: 0 }], `chunks of ${step} bytes`);
  }
  t.throws(() => new ResponseParser().push(Buffer.from('garbage\r\n\r\n')), /malformed status line/);
});

t.test('tool output parsing', async (t) => {
  t.equal(durationUs('1.50ms'), 1500);
  t.equal(durationUs('250us'), 250);
  t.equal(durationUs('2s'), 2e6);
  const w = parseWrk(`Running 3s test @ http://10.97.0.1:80/
  1 threads and 16 connections
  Latency Distribution
     50%  610.00us
     75%  800.00us
     90%    1.20ms
     99%    3.10ms
  36000 requests in 3.00s, 40.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:  12000.00
Transfer/sec:     13.33MB
`);
  t.same(w, { rps: 12000, requests: 36000, errors: 3, latencyUs: { p50: 610, p75: 800, p90: 1200, p99: 3100 } });
  const h = parseH2load(`finished in 3.00s, 9000.50 req/s, 10.00MB/s
requests: 27001 total, 27001 started, 27001 done, 27000 succeeded, 1 failed, 0 errored, 0 timeout
status codes: 27000 2xx, 0 3xx, 0 4xx, 1 5xx
                     min         max         mean         sd        +/- sd
time for request:      120us      4.56ms       789us       12us    90.00%
`);
  t.equal(h.rps, 9000.5);
  t.equal(h.errors, 2, 'failed plus non-2xx');
  t.same(h.latencyUs, { min: 120, max: 4560, mean: 789 });
  t.throws(() => parseWrk('nope'), /did not parse/);
});

t.test('histogram math and spreads', async (t) => {
  const h = latencyHistogram();
  for (let i = 1; i <= 1000; i++) h.recordValue(i);
  const p = percentiles(h);
  t.ok(Math.abs(p.p50 - 500) <= 1 && Math.abs(p.p99 - 990) <= 1 && Math.abs(p.p999 - 999) <= 1, JSON.stringify(p));
  t.same(spread([3, 1, 2]), { median: 2, min: 1, max: 3, n: 3 });
  t.same(spread([4, 1]), { median: 2.5, min: 1, max: 4, n: 2 });
});

t.test('summary pairs each run with direct, targets and table', async (t) => {
  const path = (id: BenchPath['id']): BenchPath => ({ id, scope: 'same-node', label: id, client: {} as BenchPath['client'], vip: '10.97.0.1', unavailable: undefined, unsupported: {}, proxyPids: () => [], activate: async () => {} });
  const paths = [path('direct'), path('weft'), path('nginx')];
  const m = (p50: number, p99: number, cpu?: number): Measurement => ({ ok: true, rps: 1000, latencyUs: { p50, p90: p50, p99, p999: p99 }, ...(cpu ? { cpuUsPerReq: cpu } : {}) });
  const runs: Runs = {
    'same-node/direct': { ol4: [m(100, 300), m(200, 400)] },
    'same-node/weft': { ol4: [m(150, 500, 40), m(240, 560, 44)] },
    'same-node/nginx': { ol4: [m(160, 600, 20), m(270, 700, 22)] },
  };
  const s = summarize(runs, paths);
  t.same(s['same-node/weft']!.ol4!.addedUs.p50, { median: 45, min: 40, max: 50, n: 2 }, 'added = run minus the direct run of the same repetition');
  const targets = evaluateTargets({ summary: s, agentRssIdleKiB: { 'node-1': 50 * 1024 }, unavailable: {} });
  const byName = (n: string) => targets.find((x) => x.name === n)!;
  t.equal(byName('added p50, same node, 1000 rps 4 conns').met, true, 'Weft 45 ≤ 1.5 × nginx 65');
  t.equal(byName('added p99, same node, 1000 rps 4 conns').met, true);
  t.equal(byName('CPU per request, same node, 1000 rps open loop (4 conns)').met, false, '42 > 1.5 × 21');
  t.equal(byName('agent RSS idle').met, true);
  t.equal(byName('added p50, cross node (2 mTLS hops vs nginx\'s one), 1000 rps 4 conns').met, null, 'not measured: not evaluated');
  t.match(byName('added p50, cross node (2 mTLS hops vs nginx\'s one), 1000 rps 4 conns').why!, /not run/);
  const md = renderReport({
    date: '2026-01-01T00:00:00Z',
    mode: 'quick',
    durationSeconds: 1,
    machine: { cpuModel: 'cpu', cores: 2, kernel: 'k', memGiB: 1, loadStart: '0', loadEnd: '0', versions: { node: '20', nginx: '1', haproxy: '2', weft: '0', wrk: '4', h2load: '1' } },
    method: { reps: 2, seconds: 1, warmupSeconds: 0, rate: 1000, proxyCpu: 1, loadCpu: 0 },
    paths: paths.map((p) => ({ key: `same-node/${p.id}`, label: p.label, scope: p.scope, id: p.id })),
    summary: s,
    rssIdleKiB: {},
    targets,
    resultsFile: 'bench/results/x.json',
    notes: [],
  });
  t.match(md, /\| weft \| 45 \(40–50\) \|/);
  t.match(md, /\| agent RSS idle \| ≤ 60 MB \| node-1 50\.0 MB \| yes \|/);
  t.match(md, /#### Targets \(issue 10\)/);
  const readme = spliceReadme(`# B\n\nintro\n\n${RESULTS_START}\nold\n${RESULTS_END}\n\nafter\n`, 'new');
  t.equal(readme, `# B\n\nintro\n\n${RESULTS_START}\nnew\n${RESULTS_END}\n\nafter\n`);
});

t.test('profile summary: self time per function and file, idle kept apart', async (t) => {
  const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber });
  const r = topFunctions({
    nodes: [
      { id: 1, callFrame: frame('(root)'), children: [2, 3, 4] },
      { id: 2, callFrame: frame('(idle)') },
      { id: 3, callFrame: frame('onRequest', 'file:///x/dist/agent/proxy/http1.js', 81) },
      { id: 4, callFrame: frame('emit', 'node:events', 470) },
    ],
    startTime: 0,
    endTime: 1000,
    samples: [2, 3, 3, 4, 2],
    timeDeltas: [0, 100, 100, 100, 100],
  });
  t.equal(r.idleMs, 0.2);
  t.same(r.functions.map((f) => [f.name, f.where, f.selfPercent]), [
    ['onRequest', 'dist/agent/proxy/http1.js:82', 66.7],
    ['emit', 'node:events:471', 33.3],
  ]);
  t.same(r.files.map((f) => f.name), ['dist/agent/proxy/http1.js', 'node:events']);
});

t.test('issue 10 targets: ratios against nginx and HAProxy, memory, churn, TCP against the baseline run', async (t) => {
  const sum = (o: Partial<ScenarioSummary>): ScenarioSummary => ({ reps: 1, failed: 0, errors: [], latencyUs: {}, addedUs: {}, ...o });
  const sp = (median: number) => ({ median, min: median, max: median, n: 1 });
  const summary = {
    'same-node/weft': {
      max: sum({ cpuUsPerReq: sp(90), rps: sp(9000), rssMaxKiB: sp(95 * 1024) }),
      ol4: sum({ cpuUsPerReq: sp(190), addedUs: { p50: sp(140), p99: sp(1600) } }),
      h2: sum({ rps: sp(14000) }),
      grpc: sum({ rps: sp(12000) }),
      churn: sum({ cpuUsPerReq: sp(300) }),
      tcp: sum({ cpuUsPerReq: sp(200), rps: sp(1500) }),
    },
    'same-node/nginx': { max: sum({ cpuUsPerReq: sp(50), rps: sp(17000) }), ol4: sum({ cpuUsPerReq: sp(130), addedUs: { p50: sp(100), p99: sp(-50) } }) },
    'same-node/haproxy': { h2: sum({ rps: sp(13000) }), grpc: sum({ rps: sp(12500) }), churn: sum({ cpuUsPerReq: sp(160) }), tcp: sum({ cpuUsPerReq: sp(220), rps: sp(1600) }) },
  };
  const baseline = baselineFrom('bench/results/old.json', { mode: 'full', summary: { 'same-node/weft': { tcp: sum({ cpuUsPerReq: sp(250), rps: sp(1600) }) }, 'same-node/haproxy': { tcp: sum({ cpuUsPerReq: sp(222), rps: sp(1590) }) } } });
  const r = evaluateTargets({ summary, agentRssIdleKiB: { 'node-1': 58 * 1024, 'node-2': 61 * 1024 }, unavailable: {}, ...(baseline ? { baseline } : {}) });
  const met = (n: string) => r.find((x) => x.name === n)?.met;
  t.equal(met('CPU per request, same node, max throughput (wrk c16)'), true, '90 ≤ 2 × 50');
  t.equal(met('CPU per request, same node, 1000 rps open loop (4 conns)'), true, '190 ≤ 1.5 × 130');
  t.equal(met('max req/s same node, per core (wrk c16)'), true, '9000 ≥ 50% of 17000');
  t.equal(met('HTTP/2 req/s (h2load 4×10), same node'), true);
  t.equal(met('gRPC-shaped req/s (h2load 4×10), same node'), false, '12000 < 12500');
  t.equal(met('added p50, same node, 1000 rps 4 conns'), true, '140 ≤ 150');
  t.equal(met('added p99, same node, 1000 rps 4 conns'), false, 'a negative nginx figure counts as 0');
  t.equal(met('agent RSS idle'), false, 'node-2 above 60 MB');
  t.equal(met('agent RSS under load (node-1 agent, max over the same-node scenarios)'), true);
  t.equal(met('churn CPU per connection, same node'), true, '300 ≤ 2 × 160');
  t.equal(met('no TCP regression (TCP echo vs HAProxy, against the previous full run)'), true, 'CPU ratio 0.91 vs 1.13, rate ratio 0.94 vs 1.01');
  const noBase = evaluateTargets({ summary, agentRssIdleKiB: {}, unavailable: {} });
  t.equal(noBase.find((x) => x.name.startsWith('no TCP regression'))?.met, null, 'no earlier run: not evaluated');
});

t.test('per-feature rows: every registered scenario parses, the table shows without → with', async (t) => {
  const ctx: FeatureContext = { namespace: 'bench', trustDomain: 'cluster.local', clientPrincipal: 'cluster.local/ns/bench/sa/client', server: { app: 'server-a', service: 'server-a', httpPort: 80, h2cPort: 81, tcpPort: 9000, targetHttpPort: 8080 } };
  t.ok(FEATURES.length > 0);
  t.equal(new Set(FEATURES.map((f) => f.id)).size, FEATURES.length, 'ids are unique');
  for (const f of FEATURES) {
    const objs = parseObjects(f.objects(ctx), f.id);
    // a feature is something to apply, or something running during the "with" runs (an operator's weft tap)
    t.ok(objs.length > 0 || typeof f.during === 'function', `${f.id}: objects or a command during the runs`);
    for (const o of objs) t.equal(o.metadata?.namespace, 'bench', `${f.id}: ${o.kind} ${o.metadata?.name} in the bench namespace`);
  }
  const sp = (median: number) => ({ median, min: median, max: median, n: 1 });
  const md = featureTable(
    [
      { id: 'x', label: 'ten things', owner: 'B', scope: 'same-node', rows: [{ scenario: 'ol4', without: { cpuUsPerReq: sp(100), rps: sp(1000), p50Us: sp(800), p99Us: sp(2000), failed: 0, errors: [] }, with: { cpuUsPerReq: sp(110), rps: sp(1000), p50Us: sp(850), p99Us: sp(2100), failed: 0, errors: [] }, runs: { without: [], with: [] } }] },
      { id: 'y', label: 'refused', owner: 'C', scope: 'same-node', error: 'WEFT_ERR_CONFIG: no', rows: [] },
    ],
    3,
  ).join('\n');
  t.match(md, /\| ten things \(`x`\) \| B \| same-node \| .* \| 100\.0 → 110\.0 \(\+10%\) \| 800 → 850 \(\+6%\) \|/);
  t.match(md, /not measured: WEFT_ERR_CONFIG: no/);
});
