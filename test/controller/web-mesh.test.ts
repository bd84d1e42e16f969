// The operator page's mesh views in headless Chromium, at 1,000 workloads: golden metrics per workload and
// Service from the controller's /api/v1/stat (fed by its agent scraper), the service graph with edges
// coloured by success rate and mTLS shown, policies with status, all reachable from the keyboard. Each view
// is saved as a screenshot in dist/test-artifacts/ (web-*.png), and the render cost is printed.
import t from 'tap';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { silentLogger } from '../../common/log.js';
import type { MeshConfig, Workload } from '../../common/mesh.js';
import { createObserveHandler } from '../../controller/api/observe.js';
import { AgentScraper } from '../../controller/telemetry/scraper.js';
import { createWebServer } from '../../controller/web/server.js';
import { repoRoot } from '../helpers/paths.js';
import { CHROMIUM, HeadlessChromium } from './web-chromium.js';
import { filledRegistry } from './web-fixtures.js';

const N = 1000;
const shotDir = join(repoRoot, 'dist', 'test-artifacts');

function config(): MeshConfig {
  const workloads: Workload[] = [];
  for (let i = 0; i < N; i++) {
    const ns = `team-${i % 20}`;
    workloads.push({ uid: `u${i}`, namespace: ns, name: `svc-${i}-pod`, serviceAccount: `svc-${i}`, node: `node-${i % 3}`, ips: [`10.98.${i >> 8}.${i & 255}`], labels: { app: `svc-${i}` }, meshed: i % 50 !== 7, hostNetwork: false, mtlsMode: 'PERMISSIVE', workloadName: `svc-${i}` });
  }
  return {
    version: 42,
    trustDomain: 'cluster.local',
    nodes: [{ name: 'node-0', ip: '10.99.0.11' }],
    workloads,
    services: workloads.slice(0, 200).map((w) => ({ namespace: w.namespace, name: w.workloadName, clusterIPs: ['10.97.0.1'], ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' as const }], endpoints: [] })),
    policies: [
      { key: 'AuthorizationPolicy/team-1/allow-web', kind: 'AuthorizationPolicy', namespace: 'team-1', name: 'allow-web', authz: { action: 'ALLOW', dryRun: false, scope: { meshWide: false, namespace: 'team-1' }, rules: [{}] } },
    ],
  } as unknown as MeshConfig;
}

const BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000];

/** svc-i calls svc-(i+1); every 10th edge fails 20% of requests; svc-21's calls are plaintext. */
function exposition(scale: number): string {
  const lines: string[] = [];
  for (let i = 0; i < N - 1; i++) {
    const s = `svc-${i}`;
    const d = `svc-${i + 1}`;
    const base = {
      reporter: 'source', source_workload: s, source_workload_namespace: `team-${i % 20}`, source_principal: `spiffe://cluster.local/ns/team-${i % 20}/sa/${s}`,
      destination_workload: d, destination_workload_namespace: `team-${(i + 1) % 20}`, destination_service: `${d}.team-${(i + 1) % 20}.svc.cluster.local`,
      connection_security_policy: i === 21 ? 'none' : 'mutual_tls', request_protocol: 'http',
    };
    for (const [code, n] of [['200', i % 10 === 0 ? 80 : 100], ['503', i % 10 === 0 ? 20 : 0]] as const) {
      if (!n) continue;
      const l = (extra: Record<string, string> = {}) => '{' + Object.entries({ ...base, response_code: code, ...extra }).map(([k, v]) => `${k}="${v}"`).join(',') + '}';
      lines.push(`istio_requests_total${l()} ${n * scale}`);
      for (const b of BUCKETS) lines.push(`istio_request_duration_milliseconds_bucket${l({ le: String(b) })} ${b >= 5 ? n * scale : 0}`);
      lines.push(`istio_request_duration_milliseconds_bucket${l({ le: '+Inf' })} ${n * scale}`);
    }
  }
  return lines.join('\n') + '\n';
}

t.test('the mesh views in headless Chromium at 1,000 workloads', { timeout: 600_000, skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed` }, async (t) => {
  const cfg = config();
  let scale = 1;
  let clock = Date.now() - 60_000;
  const scraper = new AgentScraper({ targets: () => [{ node: 'node-0', url: 'http://fake/metrics' }], logger: silentLogger, now: () => clock, fetchText: async () => exposition(scale) });
  await scraper.scrapeAll();
  clock += 60_000;
  scale = 2; // 100 requests per edge per minute in the window
  await scraper.scrapeAll();
  const registry = filledRegistry();
  const web = createWebServer({ registry, logger: silentLogger, configSummary: () => ({ version: 42 }), handlers: [createObserveHandler({ config: () => cfg, registry, scraper })] });
  const { port } = await web.listen(0, '127.0.0.1');
  t.teardown(() => web.close());
  const browser = new HeadlessChromium();
  t.teardown(() => browser.close());
  mkdirSync(shotDir, { recursive: true });

  const t0 = Date.now();
  await browser.open(`http://127.0.0.1:${port}/`);
  await browser.until(`document.querySelector('#workloads-table') && document.querySelector('#graph') && document.querySelector('#policies-table')`, 30_000, 'every view rendered');
  const loadMs = Date.now() - t0;
  const renderMs = Number(await browser.eval<string>(`document.body.dataset.statRenderMs`));
  t.comment(`1,000 workloads, 999 edges: page load to every view rendered ${loadMs} ms; one re-render of the workload and Service tables ${renderMs} ms (headless Chromium on this shared machine)`);

  t.equal(await browser.eval<string>(`document.querySelector('#workloads-table').dataset.rows`), String(N), 'every workload has a row');
  const web1 = await browser.eval<string[]>(`[...document.querySelector('#workloads-table tr[data-name="team-1/svc-1"]').children].map(c => c.textContent)`);
  t.same(web1, ['team-1/svc-1', '1/1', '80.00%', '1.67', '3.0 ms', '4.8 ms', '5.0 ms', '0', '100.00%'], 'svc-1: called by svc-0 whose every 10th... 20% fail; 100 requests/min; p50 in (1,5]');
  t.equal(await browser.eval<string>(`document.querySelector('#workloads-table tr[data-name="team-1/svc-1"] td.bad').textContent`), '80.00%', 'a poor success rate is flagged');
  t.equal(await browser.eval<string>(`document.querySelector('#workloads-table tr[data-name="team-7/svc-7"]').children[1].textContent`), '0/1', 'an unmeshed workload shows 0/1');
  t.ok(await browser.eval<number>(`document.querySelectorAll('#services-table tbody tr').length`) >= 200, 'Services listed');

  // the graph: an edge per caller/callee, red below 90 %, dashed without mTLS, and the same edges as a table
  const drawable = await browser.eval<number>(`(() => { const drawn = new Set([...document.querySelectorAll('#graph g.gnode')].map(g => g.dataset.node)); return [...document.querySelectorAll('#edges-table tbody tr')].filter(tr => { const [a, b] = tr.dataset.edge.split('>'); return drawn.has(a) && drawn.has(b); }).length; })()`);
  t.equal(await browser.eval<number>(`document.querySelectorAll('#graph g.gnode').length`), 300, 'the graph draws at most 300 workloads');
  t.equal(await browser.eval<number>(`document.querySelectorAll('#graph path.edge').length`), drawable, 'every edge between drawn workloads is drawn');
  t.match(await browser.eval<string>(`document.querySelector('#graph-wrap').textContent`), /Showing 300 of 1000 workloads; every edge is in the table below/);
  t.equal(await browser.eval<number>(`document.querySelectorAll('#edges-table tbody tr').length`), N - 1, 'every edge listed for screen readers');
  t.equal(await browser.eval<string>(`document.querySelector('#graph path[data-edge="team-0/svc-0>team-1/svc-1"]').getAttribute('stroke')`), '#b3261e');
  t.equal(await browser.eval<string>(`document.querySelector('#graph path[data-edge="team-1/svc-1>team-2/svc-2"]').getAttribute('stroke')`), '#1f7a3a');
  t.equal(await browser.eval<string | null>(`document.querySelector('#graph path[data-edge="team-1/svc-21>team-2/svc-22"]').getAttribute('stroke-dasharray')`), '6 4', 'plaintext edge dashed');
  t.equal(await browser.eval<string | null>(`document.querySelector('#graph path[data-edge="team-1/svc-1>team-2/svc-2"]').getAttribute('stroke-dasharray')`), null, 'mTLS edge solid');
  t.match(await browser.eval<string>(`document.querySelector('#graph').getAttribute('aria-label')`), /Service graph: 1000 workloads, 999 edges/);
  t.match(await browser.eval<string>(`document.querySelector('#edges-table tr[data-edge="team-1/svc-21>team-2/svc-22"]').textContent`), /HTTP100\.00%1\.67.*no$/);

  // policies with status; the agents' NACK (node-b in the fixture) makes the config NACKed
  t.match(await browser.eval<string>(`document.querySelector('#policies-view').textContent`), /Config version 42: .*NACK from node-b/);
  t.equal(await browser.eval<string>(`document.querySelector('#policies-table tr[data-policy="AuthorizationPolicy/team-1/allow-web"]').className`), 'nack', 'highlighted');

  // screenshots of each view (for people: dist/test-artifacts/web-*.png)
  for (const [name, sel] of [['workloads', '#workloads'], ['services', '#services'], ['graph', '#graph-section'], ['policies', '#policies'], ['nodes', '#nodes']] as const) {
    const png = await browser.screenshotOf(sel);
    t.ok(png.subarray(1, 4).toString() === 'PNG' && png.length > 2000, `screenshot of the ${name} view`);
    writeFileSync(join(shotDir, `web-${name}.png`), png);
  }

  // click-through with the keyboard: the filter narrows the table; sorting by success from a header button
  await browser.eval(`document.getElementById('filter').focus()`);
  await browser.type('svc-1');
  await browser.until(`document.querySelector('#workloads-table').dataset.rows === '111'`, 20_000, 'the filter applied');
  t.pass('typing svc-1 leaves svc-1, svc-10..19, svc-100..199');
  await browser.eval(`document.querySelector('#workloads-table button[data-sort="success"]').focus()`);
  await browser.press('Enter');
  await browser.until(`document.querySelector('#workloads-table th[aria-sort="descending"] button[data-sort="success"]')`, 20_000, 'sorted by success');
  t.equal(await browser.eval<string>(`document.activeElement.dataset.sort`), 'success', 'focus stays on the header button after re-render');
  await browser.press('Enter');
  await browser.until(`document.querySelector('#workloads-table th[aria-sort="ascending"] button[data-sort="success"]')`, 20_000, 'sorted ascending');
  const first = await browser.eval<string[]>(`[...document.querySelector('#workloads-table tbody tr').children].map(c => c.textContent)`);
  t.equal(first[2], '80.00%', `worst success first: ${first.join(' ')}`);
  // the nav links move to each view
  await browser.eval(`document.querySelector('nav.views a[href="#graph-section"]').focus()`);
  await browser.press('Enter');
  await browser.until(`location.hash === '#graph-section'`, 20_000, 'the graph view');
  t.pass('Enter on "Service graph" goes there');
  t.same(await browser.eval<string[]>(`[...document.querySelectorAll('nav.views a')].map(a => a.textContent)`), ['Workloads', 'Services', 'Service graph', 'Policies', 'Endpoints', 'Nodes']);
});
