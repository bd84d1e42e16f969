// The operator surface on a real sandbox, as a newcomer uses it: every `weft` command of the README run with
// no flags but the sandbox's id in the environment (what `npm run sandbox` makes the default), against
// steady traffic across two nodes; `weft stat` must agree with Prometheus' own query over the same window
// (±5%), Prometheus must scrape every agent and the controller, and `GET //` must not break the page.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { testSandboxId, weft } from '../helpers/sandbox.js';
import { weftBin } from '../helpers/paths.js';
import { checkIstioMetrics, ISTIO_METRICS_SPEC, writeIstioMetricsFixtures } from './istio-metrics.js';

const id = testSandboxId();
const dir = mkdtempSync(join(tmpdir(), 'weft-ops-e2e-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// web answers 500 to every 10th request (path /fail), so SUCCESS has something to measure
writeFileSync(
  join(dir, 'server.mjs'),
  `import { createServer } from 'node:http';
createServer((req, res) => { res.statusCode = req.url === '/fail' ? 500 : 200; res.end('ok\\n'); }).listen(8080);
`,
);
// a steady 20 requests per second over keep-alive (setInterval drifts little at this rate)
writeFileSync(
  join(dir, 'load.mjs'),
  `import http from 'node:http';
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
let n = 0;
setInterval(() => {
  const path = ++n % 10 === 0 ? '/fail' : '/';
  http.get({ host: 'web.shop.svc.cluster.local', path, agent }, (res) => res.resume()).on('error', () => {});
}, 50);
`,
);
writeFileSync(
  join(dir, 'spec.yaml'),
  `apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { weft.io/mesh: enabled } }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: web, namespace: shop }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: shop }
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      serviceAccountName: web
      containers:
        - { name: web, command: [node, server.mjs], ports: [{ name: http, containerPort: 8080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: 8080, appProtocol: http }]
---
apiVersion: v1
kind: Pod
metadata: { name: load, namespace: shop, labels: { app: load } }
spec:
  nodeName: node-1
  containers:
    - { name: load, command: [node, load.mjs] }
${ISTIO_METRICS_SPEC}`,
);
writeIstioMetricsFixtures(dir);

const env = { ...process.env, WEFT_SANDBOX_ID: id, NO_COLOR: '1' };
const run = (args: string[], timeout = 60_000) => spawnSync(process.execPath, [weftBin, ...args], { encoding: 'utf8', env, timeout });

function down(): void {
  const r = weft(['sandbox', 'down', '--id', id], { timeoutMs: 180_000 });
  if (r.status !== 0) console.error(`sandbox down --id ${id} failed: ${r.stderr}`);
}
t.teardown(down);

interface Status {
  controller: { web: string };
  prometheus: { url: string; running: boolean } | null;
  nodes: { name: string }[];
}

async function promQuery(url: string, q: string, at?: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}${at ? `&time=${Date.parse(at) / 1000}` : ''}`);
  const body = (await res.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  if (body.status !== 'success') throw new Error(`prometheus: ${JSON.stringify(body)}`);
  return body.data.result;
}

t.test('a newcomer\'s commands on a two-node sandbox with Prometheus', async (t) => {
  const up = weft(['sandbox', 'up', '--id', id, '--nodes', '2', '-f', join(dir, 'spec.yaml'), '--detach'], { timeoutMs: 240_000 });
  t.equal(up.status, 0, `sandbox up: ${up.stderr.slice(-2000)}`);
  if (up.status !== 0) return;
  t.match(up.stdout, /prometheus {6}http:\/\/127\.0\.0\.1:\d+/, 'the banner says where Prometheus is');
  const st = JSON.parse(run(['sandbox', 'status', '--id', id, '--json']).stdout) as Status;
  t.ok(st.prometheus?.url, 'status --json gives prometheus.url');
  t.equal(st.prometheus?.running, true);
  const prom = st.prometheus!.url;

  // the page server answers // (it said {"error":"Invalid URL"})
  const slash = await fetch(`${st.controller.web.replace(/\/$/, '')}//`);
  t.equal(slash.status, 200);
  t.notMatch(await slash.text(), /Invalid URL/);

  // Prometheus scrapes both agents and the controller
  let ups: { metric: Record<string, string>; value: [number, string] }[] = [];
  for (let i = 0; i < 60; i++) {
    ups = await promQuery(prom, 'up');
    if (ups.length === 3 && ups.every((u) => u.value[1] === '1')) break;
    await sleep(1000);
  }
  t.same(ups.map((u) => `${u.metric.job}/${u.metric.node ?? ''}=${u.value[1]}`).sort(), ['weft-agent/node-1=1', 'weft-agent/node-2=1', 'weft-controller/=1']);

  // Istio's standard metrics across two nodes, while the steady load fills the window below
  const loadStarted = Date.now();
  await checkIstioMetrics(t, dir, (q) => promQuery(prom, q), (pod, argv) => run(['sandbox', 'exec', pod, '--', ...argv]));

  // let the steady load fill a 30 s window in both Prometheus and the controller's own scrapes
  await sleep(Math.max(0, 40_000 - (Date.now() - loadStarted)));

  // which reporter to compare with: the one weft stat counts (destination reports when there are any)
  const dst = await promQuery(prom, 'sum(istio_requests_total{reporter="destination",destination_workload="web",destination_workload_namespace="shop"})');
  const reporter = dst.length && Number(dst[0]!.value[1]) > 0 ? 'destination' : 'source';
  const sel = `reporter="${reporter}",destination_workload="web",destination_workload_namespace="shop"`;
  for (const source of ['prometheus', 'agents']) {
    const r = run(['stat', 'shop/web', '--window', '30s', '--source', source, '-o', 'json']);
    t.equal(r.status, 0, `weft stat --source ${source}: ${r.stderr}`);
    const stat = JSON.parse(r.stdout) as { source: string; at: string; workloads: { rps: number; success: number; p50: number; meshed: string }[] };
    // Prometheus' own queries, evaluated at the end of the window weft stat used
    const promRps = Number((await promQuery(prom, `sum(rate(istio_requests_total{${sel}}[30s]))`, stat.at))[0]?.value[1] ?? NaN);
    const promOk = Number((await promQuery(prom, `sum(rate(istio_requests_total{${sel},response_code!~"5.."}[30s])) / sum(rate(istio_requests_total{${sel}}[30s]))`, stat.at))[0]?.value[1] ?? NaN);
    const promP50 = Number((await promQuery(prom, `histogram_quantile(0.5, sum by (le) (rate(istio_request_duration_milliseconds_bucket{${sel}}[30s])))`, stat.at))[0]?.value[1] ?? NaN);
    const row = stat.workloads[0]!;
    t.equal(stat.source, source);
    t.equal(row.meshed, '2/2');
    t.ok(promRps > 15 && promRps < 25, `Prometheus sees the steady ~20 rps: ${promRps}`);
    t.ok(Math.abs(row.rps - promRps) <= 0.05 * promRps, `RPS from ${source} ${row.rps} within 5% of Prometheus' ${promRps.toFixed(3)}`);
    t.ok(Math.abs(row.success - promOk) <= 0.05 * promOk, `SUCCESS from ${source} ${row.success} within 5% of Prometheus' ${promOk.toFixed(4)}`);
    t.ok(row.success > 0.85 && row.success < 0.95, `one request in ten fails: ${row.success}`);
    if (source === 'prometheus') t.ok(Math.abs(row.p50 - promP50) <= 0.05 * promP50 + 0.01, `P50 ${row.p50} vs Prometheus' ${promP50}`);
  }

  // the README's commands, no flags beyond the sandbox id in the environment
  const table = run(['stat']);
  t.equal(table.status, 0, table.stderr);
  t.match(table.stdout, /NAME\s+MESHED\s+SUCCESS\s+RPS\s+LATENCY_P50\s+LATENCY_P95\s+LATENCY_P99\s+TCP_CONN/);
  t.match(table.stdout, /shop\/web\s+2\/2\s+[89]\d\.\d\d%\s+\d+\.\drps/);
  t.notMatch(table.stdout, /\u001b\[/, 'no colour off a terminal');
  const one = run(['stat', 'shop/web']);
  t.match(one.stdout, /INBOUND \(from\)\nNAME[^\n]+\nshop\/load\s+[89]\d\.\d\d%/);
  t.match(one.stdout, /BACKENDS\nNAME[^\n]+\nshop\/web /);
  const out = run(['stat', 'shop/load']);
  t.match(out.stdout, /OUTBOUND \(to\)\nNAME[^\n]+\nshop\/web\s+[89]\d\.\d\d%/);
  t.equal(run(['stat', 'shop/nothing']).status, 1, 'an unknown name exits 1');

  const ver = run(['version']);
  t.equal(ver.status, 0, ver.stderr);
  t.match(ver.stdout, /client: {5}weft \d+\.\d+\.\d+[\s\S]*controller: weft[\s\S]*node-1\s+\d+\.\d+\.\d+[\s\S]*node-2\s+\d+\.\d+\.\d+/);
  const wl = run(['config', 'dump', 'workloads']);
  t.match(wl.stdout, /NAMESPACE\s+POD NAME\s+ADDRESS\s+NODE\s+PROTOCOL/);
  t.match(wl.stdout, /shop\s+load\s+10\.98\.1\.\d+\s+node-1\s+HBONE/);
  t.match(run(['config', 'dump', 'node-2', 'services']).stdout, /shop\s+web\s+10\.97\.\d+\.\d+\s+80\/http\s+2\/2/);
  t.equal(run(['config', 'dump', 'policies']).status, 0);
  t.equal(run(['config', 'dump', 'routes']).status, 0);
  t.match(run(['config', 'dump', 'connections']).stdout, /NODE\s+DIRECTION|no open connections/);
  // each node's view of the endpoints it sent traffic to (the load above goes to shop/web from node-1)
  const eps = run(['config', 'dump', 'node-1', 'endpoints']);
  t.equal(eps.status, 0, eps.stderr);
  t.match(eps.stdout, /NODE\s+BACKEND\s+ENDPOINT\s+STATE\s+OUTSTANDING\s+EWMA\s+REQUESTS\s+FAILURES\s+CIRCUIT\s+POLICY/);
  t.match(eps.stdout, /node-1\s+shop\/web:80\s+10\.98\.\d+\.\d+:\d+\s+healthy\s+\d+\s+[\d.]+ms\s+[1-9]\d*\s+\d+\s+closed/);
  const certs = run(['certs']);
  t.equal(certs.status, 0, certs.stderr);
  t.match(certs.stdout, /node-1\s+spiffe:\/\/cluster\.local\/ns\/shop\/sa\/default\s+Leaf\s+Available\s+true/);
  t.match(run(['config', 'dump', 'node-2', 'certs']).stdout, /node-2\s+spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web\s+Leaf\s+Available/);
  const ps = run(['policy', 'status']);
  t.equal(ps.status, 0, ps.stderr);
  t.match(ps.stdout, /2\/2 agents acknowledged/);
  const check = run(['check']);
  t.equal(check.status, 0, `weft check: ${check.stdout}${check.stderr}`);
  t.match(check.stdout, /agents connected\s+ok\s+2 of 2/);
  t.match(check.stdout, /config acknowledged\s+ok/);
  t.match(check.stdout, /capture node-1\s+ok/);
  const yaml = run(['stat', 'shop', '-o', 'yaml']);
  t.match(yaml.stdout, /^window: 60s\n/m);
  t.match(yaml.stdout, /name: web/);
});
