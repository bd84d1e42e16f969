// The operator page in a real headless Chromium: the rendered DOM shows every node's agent and its figures
// after the page's script ran, flags the disconnected agent, the NACK and the expiring certificate, shows
// agent text as text (no markup injection), and follows a new report live over server-sent events.
import t from 'tap';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../common/log.js';
import { createWebServer } from '../../controller/web/server.js';
import { CHROMIUM, HeadlessChromium } from './web-chromium.js';
import { NACK_REASON, filledRegistry, report } from './web-fixtures.js';
import { repoRoot } from '../helpers/paths.js';

interface Row {
  node: string;
  severity: string;
  cells: Record<string, string>;
}

const READ_ROWS = `[...document.querySelectorAll('#agents tr')].map(tr => ({
  node: tr.dataset.node, severity: tr.dataset.severity,
  cells: Object.fromEntries([...tr.children].map(td => [td.className.replace('num ', ''), td.innerText.replace(/\\s+/g, ' ').trim()])),
}))`;

t.test('the agents page in headless Chromium', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (scripts/prepare.mjs installs it)` }, async (t) => {
  const now = Date.now();
  const registry = filledRegistry(now);
  const web = createWebServer({
    registry,
    logger: silentLogger,
    configSummary: () => ({ version: 42, objects: 131 }),
    statusProviders: { kubernetes: () => [{ kind: 'Pod', state: 'synced', resourceVersion: '2040' }] },
    coalesceMs: 50,
  });
  const { port } = await web.listen(0, '127.0.0.1');
  t.teardown(() => web.close());
  const browser = new HeadlessChromium();
  t.teardown(() => browser.close());

  await browser.open(`http://127.0.0.1:${port}/`);
  await browser.until(`document.querySelectorAll('#agents tr').length === 3`, 10_000, 'three agent rows');
  t.equal(await browser.eval<string>(`document.body.dataset.stream`), 'live', 'the page is subscribed to the live stream');
  t.equal(await browser.eval<string>(`document.title`), 'Weft mesh', 'no markup from a NACK reason ran');
  t.equal(await browser.eval<number>(`document.querySelectorAll('#agents img').length`), 0, 'the NACK reason rendered as text, not as an element');

  const rows = await browser.eval<Row[]>(READ_ROWS);
  t.same(rows.map((r) => [r.node, r.severity]), [['node-a', 'ok'], ['node-b', 'error'], ['node-c', 'error']], 'every node, flagged by severity');
  const [a, b, c] = rows as [Row, Row, Row];
  t.match(a.cells, { node: /node-a 10\.99\.0\.11:50122/, state: /CONNECTED/, config: /ACK v42/, cert: /^in 19h5\dm|^in 20h00m/, requests: '1,234,567', errors: /^89 0\.01 %$/, connections: '12 4,567 opened', redirects: '4,600', cpu: '3.3 %', memory: '117.7 MiB', reported: /^\d+s ago/ });
  t.equal(a.cells.problems, '', 'a healthy agent has no problems listed');
  t.match(b.cells, { config: /NACK v41 sent v42 rejected: HTTPRoute shop\/cart/, cert: /^CERT EXPIRING in (1h5\dm|2h00m) 20\d\d-\d\d-\d\d \d\d:\d\d:\d\dZ$/, requests: '98,765', errors: '4,321 4.38 %' });
  t.ok(b.cells.config!.includes('<img src=x onerror='), 'the NACK reason is shown verbatim');
  t.match(b.cells.problems, /config version 42 rejected: .* serving version 41/);
  t.match(b.cells.problems, /a workload certificate expires in/);
  t.match(c.cells, { state: /^DISCONNECTED since 20\d\d-\d\d-\d\d \d\d:\d\d:\d\dZ$/, requests: '5,555', problems: /agent disconnected since .* it keeps serving its last config/ });
  const chips = await browser.eval<string[]>(`[...document.querySelectorAll('#summary .chip')].map(c => c.className + ':' + c.textContent)`);
  t.same(chips, ['chip :3 agents', 'chip :2 connected', 'chip error:1 disconnected', 'chip error:1 NACK', 'chip warn:1 certificates expiring']);
  t.equal(await browser.eval<string>(`document.getElementById('config').textContent`), 'config v42');
  t.match(await browser.eval<string>(`document.getElementById('status').textContent`), /kubernetes.*"resourceVersion": "2040"/s, 'extra status providers shown');

  // a screenshot for people to look at: dist/test-artifacts/controller-web-page.png (not committed)
  const png = await browser.screenshot();
  t.ok(png.subarray(1, 4).toString() === 'PNG' && png.length > 10_000, 'screenshot taken');
  const shotDir = join(repoRoot, 'dist', 'test-artifacts');
  mkdirSync(shotDir, { recursive: true });
  writeFileSync(join(shotDir, 'controller-web-page.png'), png);

  // live: node-c comes back and reports, node-a's counters move; the page follows without a reload
  registry.connected('node-c', '10.99.0.13:39550');
  registry.report(report('node-c', Date.now(), { configVersion: 43, lastSentVersion: 43, counters: { requests: 7_777_777, requestErrors: 7, connectionsOpened: 70, connectionsActive: 7, redirects: 77, cpuPercent: 7, memoryRssBytes: 7 * 1024 * 1024 } }));
  const live = await browser.until<Row[]>(`(() => { const r = ${READ_ROWS}; return r.find(x => x.node === 'node-c' && x.cells.requests === '7,777,777') ? r : null })()`, 5000, 'the pushed report');
  const c2 = live.find((r) => r.node === 'node-c')!;
  t.equal(c2.severity, 'ok', 'node-c no longer flagged');
  t.match(c2.cells, { state: /CONNECTED/, config: /ACK v43/, memory: '7.0 MiB' });
  t.equal(await browser.eval<string>(`document.getElementById('sum-disconnected').textContent`), '0 disconnected');
  t.ok(web.streamClients() >= 1, 'the page holds a live stream');
  t.ok(NACK_REASON.includes('<img'), 'fixture sanity');
});
