// The operator page's Endpoints view in headless Chromium: the controller scrapes an agent's weft_traffic_*
// metrics (a node whose backend is at its circuit limits with a full pending queue, with an ejected endpoint
// and a rate limit that refused three requests), serves them as /api/v1/endpoints, and the page shows per
// endpoint: ejected until when, outstanding, EWMA latency, the circuit in use/limit, overloads, 429s.
import t from 'tap';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';

import { silentLogger } from '../../common/log.js';
import { registerTrafficMetrics } from '../../agent/traffic/metrics.js';
import { trafficStatus } from '../../agent/traffic/status.js';
import { createObserveHandler } from '../../controller/api/observe.js';
import { AgentScraper } from '../../controller/telemetry/scraper.js';
import { createWebServer } from '../../controller/web/server.js';
import { repoRoot } from '../helpers/paths.js';
import { config, runtime } from '../traffic/endpoint-fixture.js';
import { CHROMIUM, HeadlessChromium } from './web-chromium.js';
import { filledRegistry } from './web-fixtures.js';

t.test('the Endpoints view', { timeout: 120_000, skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed` }, async (t) => {
  const perf = 1000;
  const wall = Date.parse('2026-12-02T10:00:00.000Z');
  const rt = runtime(perf);
  const metrics = new Registry();
  registerTrafficMetrics(metrics, () => trafficStatus(rt, config, perf, wall));
  const scraper = new AgentScraper({ targets: () => [{ node: 'node-1', url: 'http://fake/metrics' }], logger: silentLogger, fetchText: () => metrics.metrics() });
  await scraper.scrapeAll();
  const registry = filledRegistry();
  const web = createWebServer({ registry, logger: silentLogger, configSummary: () => ({ version: 3 }), handlers: [createObserveHandler({ config: () => config, registry, scraper })] });
  const { port } = await web.listen(0, '127.0.0.1');
  t.teardown(() => web.close());

  const api = (await (await fetch(`http://127.0.0.1:${port}/api/v1/endpoints`)).json()) as { source: string; endpoints: { endpoint: string; ejected: boolean }[] };
  t.equal(api.source, 'agents');
  t.same(api.endpoints.map((e) => [e.endpoint, e.ejected]), [['10.98.1.5:8080', false], ['10.98.2.7:8080', true]], 'the API lists both endpoints');

  const browser = new HeadlessChromium();
  t.teardown(() => browser.close());
  await browser.open(`http://127.0.0.1:${port}/`);
  await browser.until(`document.querySelector('#endpoints-table')`, 30_000, 'the Endpoints view rendered');
  const cells = (id: string) => browser.eval<string[]>(`[...document.querySelector('#endpoints-table tr[data-endpoint="node-1|shop/web:80|${id}"]').children].map(c => c.textContent)`);
  t.same(await cells('10.98.1.5:8080'), ['node-1', 'shop/web:80', '10.98.1.5:8080', 'healthy', '1', '30.0 ms', 'connections 1/1 \u00b7 pending 3/3 \u00b7 retries 0/2', '1', '3'], 'load, latency, the circuit at its limits, one overload, three 429s');
  t.same(await cells('10.98.2.7:8080'), ['node-1', 'shop/web:80', '10.98.2.7:8080', 'ejected until 2026-12-02 10:00:08Z', '0', '30.0 ms', 'connections 1/1 \u00b7 pending 3/3 \u00b7 retries 0/2', '1', '0'], 'ejected, and until when');
  t.equal(await browser.eval<string>(`document.querySelector('#endpoints-table tr[data-endpoint="node-1|shop/web:80|10.98.1.5:8080"] td.warnc').textContent`), 'connections 1/1 \u00b7 pending 3/3 \u00b7 retries 0/2', 'a circuit at a limit is flagged');
  t.equal(await browser.eval<string>(`document.querySelector('#endpoints-table tr[data-endpoint="node-1|shop/web:80|10.98.2.7:8080"]').className`), 'refused', 'an ejected endpoint is highlighted');
  const png = await browser.screenshotOf('#endpoints');
  const dir = join(repoRoot, 'dist', 'test-artifacts');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'web-endpoints.png'), png);
  t.ok(png.length > 2000, 'screenshot: dist/test-artifacts/web-endpoints.png');
});
