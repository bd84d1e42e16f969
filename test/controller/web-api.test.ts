// The operator JSON API and live stream on 15014: every agent with its figures and flags, SSE updates on
// registry changes, config and status hooks, a read-only, locked-down HTTP surface.
import t from 'tap';
import http from 'node:http';
import { silentLogger } from '../../common/log.js';
import { createWebServer, type AgentsPayload } from '../../controller/web/server.js';
import { NACK_REASON, filledRegistry, report } from './web-fixtures.js';

async function get(port: number, path: string, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** read server-sent events: resolves each `agents` event payload in order */
function subscribe(port: number) {
  const events: AgentsPayload[] = [];
  let buf = '';
  const req = http.get({ host: '127.0.0.1', port, path: '/api/v1/agents/stream' });
  const ready = new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
  req.on('response', (res) => {
    res.setEncoding('utf8');
    res.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (ev === 'agents' && data) events.push(JSON.parse(data) as AgentsPayload);
      }
    });
  });
  req.on('error', () => {});
  return {
    events,
    ready,
    close: () => req.destroy(),
    async next(pred: (p: AgentsPayload) => boolean, ms = 3000): Promise<AgentsPayload> {
      const deadline = Date.now() + ms;
      for (;;) {
        const hit = events.find(pred);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`no matching event in ${ms} ms; got ${events.length}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}

t.test('JSON API, health, config and status hooks, read-only surface', async (t) => {
  const now = Date.now();
  const registry = filledRegistry(now);
  const web = createWebServer({ registry, logger: silentLogger, configSummary: () => ({ version: 42, objects: 131 }), statusProviders: { kubernetes: () => ({ synced: true }), broken: () => { throw new Error('store not ready'); } } });
  const { port } = await web.listen(0, '127.0.0.1');
  t.teardown(() => web.close());

  const r = await get(port, '/api/v1/agents');
  t.equal(r.status, 200);
  t.match(r.headers['content-type'], /^application\/json/);
  const p = JSON.parse(r.body) as AgentsPayload;
  t.same(p.summary, { agents: 3, connected: 2, disconnected: 1, nack: 1, certExpiringSoon: 1, withProblems: 2 });
  t.same(p.agents.map((a) => a.node), ['node-a', 'node-b', 'node-c'], 'every node, connected or not, sorted');
  const [a, b, c] = p.agents;
  t.match(a, { connected: true, peer: '10.99.0.11:50122', configVersion: 42, lastSentVersion: 42, ack: 'ACK', nackReason: null, healthy: true, severity: 'ok', problems: [] });
  t.same(a!.counters, { requests: 1_234_567, requestErrors: 89, connectionsOpened: 4567, connectionsActive: 12, redirects: 4600, cpuPercent: 3.25, memoryRssBytes: 123_456_789 });
  t.ok(a!.certExpiresInSeconds! > 19.9 * 3600 && a!.certExpiresInSeconds! <= 20 * 3600, 'certificate expiry in seconds');
  t.ok(a!.reportAgeSeconds! >= 2 && a!.reportAgeSeconds! < 10, 'report age');
  t.match(b, { ack: 'NACK', nackReason: NACK_REASON, configVersion: 41, lastSentVersion: 42, severity: 'error' });
  t.same(b!.problems.map((x) => x.kind), ['nack', 'cert-expiring']);
  t.match(c, { connected: false, severity: 'error', problems: [{ kind: 'disconnected', severity: 'error' }] });
  t.ok(c!.disconnectedAt, 'disconnection time');

  const h = await get(port, '/healthz');
  t.same([h.status, h.body], [200, 'ok\n']);
  t.same(JSON.parse((await get(port, '/api/v1/config')).body), { version: 42, objects: 131 });
  const st = JSON.parse((await get(port, '/api/v1/status')).body);
  t.same(st, { kubernetes: { synced: true }, broken: { error: 'store not ready' } }, 'a failing provider shows its error, the others still answer');

  const page = await get(port, '/');
  t.equal(page.status, 200);
  t.match(page.headers['content-type'], /^text\/html/);
  t.match(page.headers['content-security-policy'], /default-src 'none'; script-src 'sha256-[A-Za-z0-9+/=]+'( 'sha256-[A-Za-z0-9+/=]+')*; style-src 'sha256-/);
  t.equal(page.headers['x-content-type-options'], 'nosniff');
  // the only absolute URL is the SVG namespace name, which is an identifier, never fetched
  t.notMatch(page.body.replaceAll("'http://www.w3.org/2000/svg'", ''), /https?:\/\//, 'no external asset, no CDN');
  t.notMatch(page.body, /innerHTML|insertAdjacentHTML|document\.write/, 'the page never parses data as HTML');

  t.equal((await get(port, '/api/v1/agents', 'POST')).status, 405);
  t.equal((await get(port, '/api/v1/agents', 'HEAD')).status, 200);
  const nf = await get(port, '/nope');
  t.equal(nf.status, 404);
  t.match(JSON.parse(nf.body), { error: 'no such page: /nope' });

  const withAdmin = createWebServer({
    registry,
    logger: silentLogger,
    handlers: [
      async (req, res) => {
        if (req.method !== 'POST' || req.url !== '/api/v1/apply') return false;
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"applied":1}');
        return true;
      },
    ],
  });
  const { port: p3 } = await withAdmin.listen(0, '127.0.0.1');
  t.teardown(() => withAdmin.close());
  t.same([(await get(p3, '/api/v1/apply', 'POST')).body, (await get(p3, '/api/v1/agents', 'POST')).status], ['{"applied":1}', 405], 'extra handlers answer first, the rest stays read-only');
  t.equal((await get(p3, '/healthz')).status, 200);

  const bare = createWebServer({ registry, logger: silentLogger });
  const { port: p2 } = await bare.listen(0, '127.0.0.1');
  t.teardown(() => bare.close());
  t.equal((await get(p2, '/api/v1/config')).status, 404, 'no config provider: 404 with a reason');
});

t.test('live stream: a snapshot on connect, then one update per change burst', async (t) => {
  const now = Date.now();
  const registry = filledRegistry(now);
  const web = createWebServer({ registry, logger: silentLogger, coalesceMs: 100, refreshSeconds: 60 });
  const { port } = await web.listen(0, '127.0.0.1');
  t.teardown(() => web.close());
  const s = subscribe(port);
  t.teardown(() => s.close());
  const res = await s.ready;
  t.match(res.headers['content-type'], /^text\/event-stream/);
  const first = await s.next(() => true);
  t.equal(first.agents.length, 3, 'snapshot on connect');
  t.equal(web.streamClients(), 1);

  // a burst of reports is coalesced into one event carrying the latest figures
  for (let i = 1; i <= 20; i++) registry.report(report('node-a', Date.now(), { counters: { requests: 2_000_000 + i, requestErrors: 0, connectionsOpened: 1, connectionsActive: 1, redirects: 1, cpuPercent: 1, memoryRssBytes: 1 } }));
  const upd = await s.next((p) => p.agents[0]!.counters!.requests === 2_000_020);
  t.equal(s.events.length, 2, 'twenty reports, one event');
  t.equal(upd.agents[0]!.counters!.requests, 2_000_020);

  registry.disconnected('node-a');
  const disc = await s.next((p) => p.summary.disconnected === 2);
  t.match(disc.agents[0], { node: 'node-a', connected: false, severity: 'error' });

  s.close();
  await new Promise((r) => setTimeout(r, 100));
  t.equal(web.streamClients(), 0, 'a closed stream is forgotten');
});
