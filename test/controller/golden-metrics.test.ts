// The golden metrics (weft stat's columns) from Istio-named series: exposition parsing, quantiles as
// Prometheus computes them, one reporter per subject (no double counting), reset handling in the scraper.
import t from 'tap';

import { silentLogger } from '../../common/log.js';
import { parseExposition } from '../../controller/telemetry/exposition.js';
import { backendRows, callerRows, edges, histogramQuantile, outboundRows, serviceRows, workloadRows } from '../../controller/telemetry/golden.js';
import { AgentScraper } from '../../controller/telemetry/scraper.js';
import type { WindowData } from '../../controller/telemetry/window.js';

const BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000];

function labels(reporter: string, src: string, dst: string, svc: string, code: number, mtls = true): Record<string, string> {
  const [sns, sw] = src.split('/');
  const [dns, dw] = dst.split('/');
  return {
    reporter,
    source_workload: sw!,
    source_workload_namespace: sns!,
    source_principal: `spiffe://cluster.local/ns/${sns}/sa/${sw}`,
    destination_workload: dw!,
    destination_workload_namespace: dns!,
    destination_service: svc,
    connection_security_policy: mtls ? 'mutual_tls' : 'none',
    request_protocol: 'http',
    response_code: String(code),
  };
}

/** Exposition text for `n` requests of `ms` each under those labels. */
function series(l: Record<string, string>, n: number, ms: number): string {
  const lab = (extra: Record<string, string> = {}) =>
    '{' + Object.entries({ ...l, ...extra }).map(([k, v]) => `${k}="${v}"`).join(',') + '}';
  const lines = [`istio_requests_total${lab()} ${n}`];
  for (const b of BUCKETS) lines.push(`istio_request_duration_milliseconds_bucket${lab({ le: String(b) })} ${ms <= b ? n : 0}`);
  lines.push(`istio_request_duration_milliseconds_bucket${lab({ le: '+Inf' })} ${n}`);
  lines.push(`istio_request_duration_milliseconds_sum${lab()} ${n * ms}`, `istio_request_duration_milliseconds_count${lab()} ${n}`);
  return lines.join('\n');
}

function windowOf(text: string, seconds: number): WindowData {
  const s = parseExposition(text);
  return {
    seconds,
    requests: s.filter((x) => x.name === 'istio_requests_total'),
    durationBuckets: s.filter((x) => x.name === 'istio_request_duration_milliseconds_bucket'),
    requestBytes: [],
    responseBytes: [],
    tcpOpened: s.filter((x) => x.name === 'istio_tcp_connections_opened_total'),
    tcpClosed: s.filter((x) => x.name === 'istio_tcp_connections_closed_total'),
    source: 'agents',
    at: new Date().toISOString(),
  };
}

t.test('exposition: labels with commas, quotes and braces; comments and +Inf', async (t) => {
  const s = parseExposition('# HELP x y\n# TYPE x counter\nx{a="1,2",b="q\\"}{",le="+Inf"} 3\ny 4.5 1700000000\nz{} +Inf\n');
  t.same(s, [
    { name: 'x', labels: { a: '1,2', b: 'q"}{', le: '+Inf' }, value: 3 },
    { name: 'y', labels: {}, value: 4.5 },
    { name: 'z', labels: {}, value: Infinity },
  ]);
});

t.test('histogram_quantile interpolates within the bucket as Prometheus does', async (t) => {
  const b = new Map([[1, 0], [5, 50], [10, 100], [Infinity, 100]]);
  t.equal(histogramQuantile(0.5, b), 5);
  t.equal(histogramQuantile(0.25, b), 3);
  t.equal(histogramQuantile(0.99, b), 9.9);
  t.equal(histogramQuantile(0.5, new Map([[1, 0], [Infinity, 10]])), 1, 'in +Inf: the highest finite bound');
  t.equal(histogramQuantile(0.5, new Map([[1, 0], [Infinity, 0]])), null);
});

t.test('stat rows: success, RPS, latency, one reporter per subject, meshed, TCP', async (t) => {
  const svc = 'web.shop.svc.cluster.local';
  const text = [
    // both proxies report the same 90 + 10 requests: counted once (the destination's report)
    series(labels('source', 'shop/client', 'shop/web', svc, 200), 90, 3),
    series(labels('source', 'shop/client', 'shop/web', svc, 503), 10, 40),
    series(labels('destination', 'shop/client', 'shop/web', svc, 200), 90, 3),
    series(labels('destination', 'shop/client', 'shop/web', svc, 503), 10, 40),
    // only a source report (its destination proxy does not report requests): counted from the source
    series(labels('source', 'shop/web', 'shop/db', 'db.shop.svc.cluster.local', 200), 30, 0.7, ),
    'istio_tcp_connections_opened_total{reporter="destination",source_workload="client",source_workload_namespace="shop",destination_workload="web",destination_workload_namespace="shop",connection_security_policy="mutual_tls",request_protocol="tcp"} 7',
    'istio_tcp_connections_closed_total{reporter="destination",source_workload="client",source_workload_namespace="shop",destination_workload="web",destination_workload_namespace="shop",connection_security_policy="mutual_tls",request_protocol="tcp"} 4',
  ].join('\n');
  const w = windowOf(text, 10);
  const rows = workloadRows(w, [
    { namespace: 'shop', name: 'web', pods: 2, meshed: 2 },
    { namespace: 'shop', name: 'client', pods: 1, meshed: 1 },
    { namespace: 'shop', name: 'idle', pods: 1, meshed: 0 },
  ]);
  const web = rows.find((r) => r.name === 'web')!;
  t.equal(web.requests, 100);
  t.equal(web.rps, 10);
  t.equal(web.success, 0.9);
  t.equal(web.meshed, '2/2');
  t.equal(web.tcpConn, 3);
  t.equal(web.mtls, 1);
  t.equal(web.p50, 3.22, 'p50 inside the (1,5] bucket: 1 + 4 × 50/90');
  t.ok(web.p99! > 25 && web.p99! <= 50, `p99 in the (25,50] bucket: ${web.p99}`);
  const db = rows.find((r) => r.name === 'db')!;
  t.equal(db.requests, 30, 'source reports used when there is no destination report');
  t.equal(db.success, 1);
  t.equal(db.meshed, null, 'a workload the controller does not know has no MESHED');
  const idle = rows.find((r) => r.name === 'idle')!;
  t.equal(idle.requests, 0);
  t.equal(idle.success, null);
  t.equal(idle.meshed, '0/1');

  const svcs = serviceRows(w, [{ namespace: 'shop', name: 'web' }, { namespace: 'shop', name: 'db' }]);
  t.same(svcs.map((r) => [r.name, r.requests]), [['db', 30], ['web', 100]]);
  t.same(backendRows(w, 'shop/web').map((r) => [r.name, r.requests, r.success]), [['web', 100, 0.9]]);
  t.same(outboundRows(w, 'shop/client').map((r) => [r.name, r.requests]), [['web', 100]], 'outbound counts the caller\'s source reports');
  t.same(callerRows(w, 'shop/web').map((r) => [r.name, r.requests]), [['client', 100]]);
  const e = edges(w);
  t.same(e.map((x) => [x.source, x.destination, x.requests, x.success, x.mtls]), [
    ['shop/client', 'shop/web', 100, 0.9, 1],
    ['shop/web', 'shop/db', 30, 1, 1],
  ]);
});

t.test('scraper: increases over the window, counter resets, unreachable agents reported', async (t) => {
  let now = 1_000_000;
  let n = 100;
  let fail = false;
  const l = labels('source', 'a/c', 'a/s', 's.a.svc.cluster.local', 200);
  const scraper = new AgentScraper({
    targets: () => [{ node: 'node-1', url: 'http://x/metrics' }],
    logger: silentLogger,
    now: () => now,
    fetchText: async () => {
      if (fail) throw new Error('connect ECONNREFUSED');
      return series(l, n, 3);
    },
  });
  t.equal(scraper.window(60), null, 'no window before two scrapes');
  await scraper.scrapeAll();
  now += 30_000;
  n = 160;
  await scraper.scrapeAll();
  let w = scraper.window(60)!;
  t.equal(w.seconds, 30, 'the window is what the history covers');
  t.equal(w.requests[0]!.value, 60);
  now += 30_000;
  n = 20; // agent restarted: counter reset
  await scraper.scrapeAll();
  w = scraper.window(30)!;
  t.equal(w.requests[0]!.value, 20, 'after a reset the new value is the increase');
  fail = true;
  await scraper.scrapeAll();
  t.match(scraper.scrapeErrors(), { 'node-1': /ECONNREFUSED/ });
});
