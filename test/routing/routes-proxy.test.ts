// HTTPRoutes through two real node proxies on loopback (the routing Router plugged into the pipeline),
// compiled from YAML-shaped objects by the controller's own store and compiler: weighted splits and a
// split change, matching and 404, a pod-IP call untouched, header modifiers, redirect, rewrite, unresolved
// and empty backends, consumer routes, timeouts, retries within the budget.
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { Registry } from 'prom-client';

import type { MeshConfig } from '../../common/mesh.js';
import { RoutingMetrics } from '../../agent/routing/metrics.js';
import { routingObserver, routingRouter } from '../../agent/routing/router.js';
import { listen, metricValue, startMesh, type Mesh, type PodSpec } from '../proxy/fixtures/mesh.js';
import { applyPolicies } from './apply-policies.js';

const PODS: PodSpec[] = [
  { name: 'client', node: 'node-a', ip: '127.0.20.1' },
  { name: 'other-client', node: 'node-a', ip: '127.0.20.9', ns: 'web' },
  { name: 'v1', node: 'node-a', ip: '127.0.20.2' },
  { name: 'v2', node: 'node-b', ip: '127.0.20.3' },
  { name: 'flaky', node: 'node-a', ip: '127.0.20.4' },
  { name: 'slow', node: 'node-a', ip: '127.0.20.5' },
  { name: 'down', node: 'node-a', ip: '127.0.20.6' },
];
const VIP = { echo: '127.0.97.30', v1: '127.0.97.31', v2: '127.0.97.32', flaky: '127.0.97.33', slow: '127.0.97.34', empty: '127.0.97.35', down: '127.0.97.36' };

interface Seen {
  pod: string;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** flaky only: sha256 and length of the request body */
  body?: { sha: string; len: number };
}

async function setup(t: Test) {
  const seen: Seen[] = [];
  const servers: http.Server[] = [];
  let flakyCount = 0;
  const serve = async (pod: string, ip: string, handler?: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<number> => {
    const s = http.createServer((req, res) => {
      seen.push({ pod, method: req.method!, url: req.url!, headers: req.headers });
      if (handler) return handler(req, res);
      res.setHeader('x-pod', pod);
      res.end(`${pod} ${req.url}`);
    });
    servers.push(s);
    return listen(s, ip);
  };
  // All pods listen on one port number (a Service has one targetPort): bind the first, then the rest.
  const port = await serve('v1', '127.0.20.2');
  const bindAt = (s: http.Server, ip: string) => new Promise<void>((r) => s.listen(port, ip, r));
  const more: [string, string, ((req: http.IncomingMessage, res: http.ServerResponse) => void) | undefined][] = [
    ['v2', '127.0.20.3', undefined],
    ['flaky', '127.0.20.4', (req, res) => {
      // fails every other request with 503, after reading the whole body
      const h = createHash('sha256');
      let len = 0;
      const me = seen.at(-1)!;
      req.on('data', (c: Buffer) => {
        h.update(c);
        len += c.length;
      });
      req.on('end', () => {
        me.body = { sha: h.digest('hex'), len };
        res.statusCode = flakyCount++ % 2 === 0 ? 503 : 200;
        res.end('flaky');
      });
    }],
    ['slow', '127.0.20.5', (_req, res) => {
      const timer = setTimeout(() => res.end('slow'), 2000);
      res.on('close', () => clearTimeout(timer));
    }],
  ];
  for (const [pod, ip, h] of more) {
    const s = http.createServer((req, res) => {
      seen.push({ pod, method: req.method!, url: req.url!, headers: req.headers });
      if (h) return h(req, res);
      res.setHeader('x-pod', pod);
      res.end(`${pod} ${req.url}`);
    });
    servers.push(s);
    await bindAt(s, ip);
  }
  // appProtocol http: no sniffing (the fixture's 50 ms sniff window is too short on a busy machine)
  const mkSvc = (name: string, vip: string, pods: string[]) => ({ name, vip, port: 80, targetPort: port, pods, appProtocol: 'http' });
  const registry = new Registry();
  const metrics = new RoutingMetrics(registry);
  const mesh = await startMesh(
    PODS,
    [
      mkSvc('echo', VIP.echo, ['v1']),
      mkSvc('echo-v1', VIP.v1, ['v1']),
      mkSvc('echo-v2', VIP.v2, ['v2']),
      mkSvc('flaky', VIP.flaky, ['flaky']),
      mkSvc('slow', VIP.slow, ['slow']),
      mkSvc('empty', VIP.empty, []),
      // a pod with nothing listening: every connection is refused
      mkSvc('down', VIP.down, ['down']),
    ],
    { stages: { router: routingRouter({ metrics }), observers: [routingObserver(metrics, () => 'cluster.local')] } },
  );
  t.teardown(async () => {
    await mesh.close();
    for (const s of servers) s.close();
  });
  /** Applies route objects (validated and compiled as the controller does) to both proxies. */
  const apply = (objs: Record<string, unknown>[]): MeshConfig => applyPolicies(mesh, objs);
  return { mesh, seen, apply, registry, port };
}

interface Res {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
  ms: number;
}

function call(mesh: Mesh, from: string, path: string, o: { headers?: Record<string, string>; method?: string; body?: Buffer } = {}): Promise<Res> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: from, path, method: o.method ?? 'GET', headers: { host: 'echo.default', ...o.headers }, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, ms: performance.now() - t0 }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

const route = (name: string, parent: string, rules: unknown[], ns = 'default', extra: Record<string, unknown> = {}) => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name, namespace: ns, creationTimestamp: '2026-12-01T00:00:00Z' },
  spec: { parentRefs: [{ group: '', kind: 'Service', name: parent, namespace: 'default' }], rules, ...extra },
});
const be = (name: string, weight?: number, extra: Record<string, unknown> = {}) => ({ name, port: 80, ...(weight !== undefined ? { weight } : {}), ...extra });

t.test('weighted split, weight 0, and a split moved to 100/0', async (t) => {
  const { mesh, apply } = await setup(t);
  mesh.route('client', VIP.echo, 80);
  apply([route('split', 'echo', [{ backendRefs: [be('echo-v1', 70), be('echo-v2', 30), be('flaky', 0)] }])]);
  const count: Record<string, number> = {};
  for (let i = 0; i < 500; i++) {
    const r = await call(mesh, '127.0.20.1', '/');
    const who = r.body.split(' ')[0]!;
    count[who] = (count[who] ?? 0) + 1;
  }
  // Backends are drawn at random per request (as Envoy's weighted clusters): one standard deviation over 500
  // is 2%, so ±7% (3.4 sigma) fails about once in 1,500 runs, where ±5% failed about once in 70.
  t.ok(Math.abs((count.v1 ?? 0) / 500 - 0.7) <= 0.07, `70/30 within ±7% over 500: ${JSON.stringify(count)}`);
  t.equal(count.flaky, undefined, 'weight 0 gets none');
  t.equal((count.v1 ?? 0) + (count.v2 ?? 0), 500);
  apply([route('split', 'echo', [{ backendRefs: [be('echo-v1', 100), be('echo-v2', 0)] }])]);
  const after = await Promise.all(Array.from({ length: 50 }, () => call(mesh, '127.0.20.1', '/')));
  t.same(new Set(after.map((r) => r.body.split(' ')[0])), new Set(['v1']), 'the new split applies to the next requests');
});

t.test('matching, precedence, 404, and a pod IP call untouched', async (t) => {
  const { mesh, apply, registry } = await setup(t);
  apply([
    route('match', 'echo', [
      { matches: [{ path: { type: 'PathPrefix', value: '/v2' } }, { headers: [{ name: 'Version', value: 'two' }] }], backendRefs: [be('echo-v2')] },
      { matches: [{ queryParams: [{ name: 'pod', value: 'one' }] }], backendRefs: [be('echo-v1')] },
      { matches: [{ path: { type: 'Exact', value: '/v2/exact' } }], backendRefs: [be('echo-v1')] },
    ]),
  ]);
  mesh.route('client', VIP.echo, 80);
  const who = async (path: string, headers: Record<string, string> = {}) => {
    const r = await call(mesh, '127.0.20.1', path, { headers });
    return r.status === 200 ? r.body.split(' ')[0] : String(r.status);
  };
  t.equal(await who('/v2'), 'v2');
  t.equal(await who('/v2/x'), 'v2');
  t.equal(await who('/v2example'), '404', 'element-wise prefix: /v2example is no match, and nothing else matches');
  t.equal(await who('/v2/exact'), 'v1', 'Exact beats the prefix');
  t.equal(await who('/any', { version: 'two' }), 'v2', 'header match');
  t.equal(await who('/any?pod=one'), 'v1', 'query match');
  t.equal(await who('/any?pod=two'), '404', 'no match → 404');
  t.ok((await metricValue(registry, 'weft_route_unmatched_total', { destination_service: 'echo.default.svc.cluster.local' })) >= 2);
  // the same pod called by its IP: no route applies
  mesh.route('client', '127.0.20.2', 0);
  const { port } = await (async () => ({ port: mesh.config.services[0]!.ports[0]!.targetPort }))();
  mesh.route('client', '127.0.20.2', port);
  const direct = await call(mesh, '127.0.20.1', '/any?pod=two');
  t.equal(direct.status, 200, 'a pod IP call is never routed (no 404)');
  t.equal(direct.body, 'v1 /any?pod=two');
});

t.test('filters: header modifiers, redirect, rewrite', async (t) => {
  const { mesh, apply, seen } = await setup(t);
  apply([
    route('filters', 'echo', [
      {
        matches: [{ path: { type: 'PathPrefix', value: '/hdr' } }],
        filters: [
          { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Set', value: 'set' }], add: [{ name: 'X-Add', value: 'added' }], remove: ['X-Remove'] } },
          { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'X-Resp', value: 'r' }], remove: ['x-pod'] } },
        ],
        backendRefs: [be('echo-v1', 1, { filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Backend', value: 'v1' }] } }, { type: 'ResponseHeaderModifier', responseHeaderModifier: { add: [{ name: 'X-Backend-Resp', value: 'v1' }] } }] })],
      },
      { matches: [{ path: { type: 'PathPrefix', value: '/old' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' }, statusCode: 301 } }] },
      { matches: [{ path: { type: 'PathPrefix', value: '/elsewhere' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', hostname: 'example.org' } }] },
      { matches: [{ path: { type: 'PathPrefix', value: '/api' } }], filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'rewritten.example', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v1' } } }], backendRefs: [be('echo-v1')] },
      { matches: [{ path: { type: 'Exact', value: '/full' } }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplaceFullPath', replaceFullPath: '/replaced' } } }], backendRefs: [be('echo-v1')] },
    ]),
  ]);
  mesh.route('client', VIP.echo, 80);
  const r = await call(mesh, '127.0.20.1', '/hdr', { headers: { 'X-Remove': 'bye', 'X-Set': 'old', 'X-Add': 'first' } });
  t.equal(r.status, 200);
  const got = seen.at(-1)!.headers;
  t.equal(got['x-set'], 'set', 'set replaces');
  t.match(String(got['x-add']), /first.*added/, 'add appends');
  t.equal(got['x-remove'], undefined, 'remove removes');
  t.equal(got['x-backend'], 'v1', 'per-backend request header filter');
  t.equal(r.headers['x-resp'], 'r', 'response header set');
  t.equal(r.headers['x-pod'], undefined, 'response header removed');
  t.equal(r.headers['x-backend-resp'], 'v1', 'per-backend response header filter');
  const red = await call(mesh, '127.0.20.1', '/old/page?q=1');
  t.equal(red.status, 301);
  t.equal(red.headers.location, 'http://echo.default/new/page?q=1');
  const red2 = await call(mesh, '127.0.20.1', '/elsewhere/x');
  t.equal(red2.status, 302, 'default redirect status 302');
  t.equal(red2.headers.location, 'https://example.org/elsewhere/x');
  const rw = await call(mesh, '127.0.20.1', '/api/items?id=3');
  t.equal(rw.body, 'v1 /v1/items?id=3', 'prefix rewritten, query kept');
  t.equal(seen.at(-1)!.headers.host, 'rewritten.example', 'host rewritten');
  const full = await call(mesh, '127.0.20.1', '/full?x=1');
  t.equal(full.body, 'v1 /replaced?x=1');
});

t.test('unresolved backend → 500, no ready endpoint → 503, no backends → 500; consumer routes', async (t) => {
  const { mesh, apply } = await setup(t);
  apply([
    route('odd', 'echo', [
      { matches: [{ path: { type: 'PathPrefix', value: '/missing' } }], backendRefs: [be('no-such-service')] },
      { matches: [{ path: { type: 'PathPrefix', value: '/empty' } }], backendRefs: [be('empty')] },
      { matches: [{ path: { type: 'PathPrefix', value: '/none' } }] },
    ]),
    route('consumer', 'echo', [{ backendRefs: [be('echo-v2', 1, { namespace: 'default' })] }], 'web'),
  ]);
  mesh.route('client', VIP.echo, 80);
  t.equal((await call(mesh, '127.0.20.1', '/missing')).status, 500);
  t.equal((await call(mesh, '127.0.20.1', '/empty')).status, 503);
  t.equal((await call(mesh, '127.0.20.1', '/none')).status, 500);
  mesh.route('other-client', VIP.echo, 80);
  const c = await call(mesh, '127.0.20.9', '/missing');
  t.equal(c.body, 'v2 /missing', 'a caller in the consumer route namespace gets the consumer route only');
});

t.test('timeouts: request 500ms vs a 2 s backend → 504 in time; 0s → 200', async (t) => {
  const { mesh, apply, registry } = await setup(t);
  apply([route('slow', 'slow', [{ matches: [{ path: { type: 'PathPrefix', value: '/t' } }], timeouts: { request: '500ms' }, backendRefs: [be('slow')] }, { timeouts: { request: '0s' }, backendRefs: [be('slow')] }])]);
  mesh.route('client', VIP.slow, 80);
  const r = await call(mesh, '127.0.20.1', '/t');
  t.equal(r.status, 504);
  t.ok(r.ms >= 480 && r.ms < 600, `504 after ${r.ms.toFixed(0)} ms`);
  t.equal(await metricValue(registry, 'weft_request_timeouts_total', { destination_service: 'slow.default.svc.cluster.local', route: 'default/slow#rule-0' }), 1, 'the timeout is counted apart');
  const ok = await call(mesh, '127.0.20.1', '/other');
  t.equal(ok.status, 200, '0s disables the timeout');
  t.ok(ok.ms >= 1900);
});

t.test('retries: 50% 503 upstream, attempts 3 codes [503], budget raised', async (t) => {
  const { mesh, apply, registry } = await setup(t);
  const tp = { apiVersion: 'weft.io/v1alpha1', kind: 'TrafficPolicy', metadata: { name: 'budget', namespace: 'default' }, spec: { targetRef: { group: '', kind: 'Service', name: 'flaky' }, retryBudget: { percent: 100, minRetriesPerSecond: 1000 } } };
  apply([route('retry', 'flaky', [{ retry: { attempts: 3, codes: [503], backoff: '1ms' }, backendRefs: [be('flaky')] }]), tp]);
  mesh.route('client', VIP.flaky, 80);
  let ok = 0;
  for (let i = 0; i < 200; i++) if ((await call(mesh, '127.0.20.1', '/')).status === 200) ok++;
  t.ok(ok / 200 >= 0.93, `success ${ok}/200`);
  t.ok((await metricValue(registry, 'weft_retries_total', { destination_service: 'flaky.default.svc.cluster.local', policy: 'route' })) >= 90, 'retries counted apart');
  // the outcome is recorded when the response has closed, a moment after the client read it
  let istio = 0;
  for (let i = 0; i < 40 && istio < 200; i++) {
    istio = await metricValue(mesh.a.registry, 'istio_requests_total', { reporter: 'source', destination_service: 'flaky.default.svc.cluster.local' });
    if (istio < 200) await new Promise((res) => setTimeout(res, 50));
  }
  t.equal(istio, 200, 'istio_requests_total counts one per client request');
});

t.test('default budget: the upstream fully down, retries stay within it', async (t) => {
  const { mesh, apply, registry } = await setup(t);
  apply([route('retry', 'down', [{ retry: { attempts: 3, codes: [503] }, backendRefs: [be('down')] }])]);
  mesh.route('client', VIP.down, 80);
  const n = 300;
  const statuses = new Set<number>();
  const t0 = performance.now();
  // 10 at a time, so the run fits in one budget window on a busy machine
  for (let i = 0; i < n; i += 10) for (const r of await Promise.all(Array.from({ length: 10 }, () => call(mesh, '127.0.20.1', '/')))) statuses.add(r.status);
  const windows = Math.ceil((performance.now() - t0) / 10_000);
  t.same([...statuses], [503], 'connection refused → 503');
  const retries = await metricValue(registry, 'weft_retries_total', { destination_service: 'down.default.svc.cluster.local' });
  const refused = await metricValue(registry, 'weft_retry_budget_exhausted_total', { destination_service: 'down.default.svc.cluster.local' });
  // Linkerd's default: 10/s floor over 10 s + 20% of the requests in the window
  // floor 10/s over each 10 s window the run touched, plus 20% of the requests
  t.ok(retries <= 100 * windows + 0.2 * n, `retries ${retries} within budget ${100 * windows + 0.2 * n} (${windows} window(s))`);
  t.ok(refused > 0, `the budget refused ${refused} retries`);
});

t.test('retries replay a POST body under 64 KiB byte-exact; a larger body goes once', async (t) => {
  const { mesh, apply, seen } = await setup(t);
  const tp = { apiVersion: 'weft.io/v1alpha1', kind: 'TrafficPolicy', metadata: { name: 'budget', namespace: 'default' }, spec: { targetRef: { group: '', kind: 'Service', name: 'flaky' }, retryBudget: { percent: 100, minRetriesPerSecond: 1000 } } };
  apply([route('retry', 'flaky', [{ retry: { attempts: 3, codes: [503] }, backendRefs: [be('flaky')] }]), tp]);
  mesh.route('client', VIP.flaky, 80);
  const body = randomBytes(60 * 1024);
  const sha = createHash('sha256').update(body).digest('hex');
  let okCount = 0;
  for (let i = 0; i < 4; i++) {
    const before = seen.length;
    const r = await call(mesh, '127.0.20.1', '/post', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    if (r.status === 200) okCount++;
    const tries = seen.slice(before).filter((x) => x.pod === 'flaky');
    t.ok(tries.every((x) => x.body?.sha === sha && x.body.len === body.length), `every try got the same ${body.length} bytes (${tries.length} tries)`);
  }
  t.equal(okCount, 4, 'each POST succeeded after a retry');
  const chunked = await new Promise<number>((resolve, reject) => {
    const req = http.request({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.20.1', path: '/chunked', method: 'POST', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.write(body.subarray(0, 1000));
    setTimeout(() => req.end(body.subarray(1000)), 20);
  });
  t.equal(chunked, 200, 'a chunked body is kept and replayed too');
  t.equal(seen.at(-1)!.body?.sha, sha);
  const big = randomBytes(100 * 1024);
  const results: number[] = [];
  for (let i = 0; i < 4; i++) {
    const before = seen.length;
    results.push((await call(mesh, '127.0.20.1', '/big', { method: 'POST', body: big })).status);
    t.equal(seen.slice(before).filter((x) => x.pod === 'flaky').length, 1, 'a body over 64 KiB is sent once, never retried');
  }
  t.ok(results.includes(503), 'so half of them fail');
});

t.test('RequestMirror: a copy to the mirror Service, response ignored', async (t) => {
  const { mesh, apply, seen, registry } = await setup(t);
  apply([route('mirror', 'echo', [{ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'echo-v2', port: 80 } } }, { type: 'RequestMirror', requestMirror: { backendRef: { name: 'down', port: 80 }, percent: 50 } }], backendRefs: [be('echo-v1')] }])]);
  mesh.route('client', VIP.echo, 80);
  const body = Buffer.from('mirror me');
  const r = await call(mesh, '127.0.20.1', '/m?x=1', { method: 'PUT', body });
  t.equal(r.body, 'v1 /m?x=1', 'the client gets the primary answer');
  for (let i = 0; i < 50 && !seen.some((x) => x.pod === 'v2'); i++) await new Promise((res) => setTimeout(res, 20));
  const copy = seen.find((x) => x.pod === 'v2');
  t.ok(copy, 'the mirror got a copy');
  t.equal(copy?.method, 'PUT');
  t.equal(copy?.url, '/m?x=1');
  t.equal(copy?.headers.host, 'echo.default-shadow', 'the copy says it is one');
  for (let i = 0; i < 20; i++) await call(mesh, '127.0.20.1', '/m');
  // copies finish on their own time: wait for them to be counted (the client never waited for them)
  let toV2 = 0;
  for (let i = 0; i < 100 && toV2 < 21; i++) {
    await new Promise((res) => setTimeout(res, 50));
    toV2 = await metricValue(registry, 'weft_mirrored_requests_total', { mirror: 'default/echo-v2:80', result: 'sent' });
  }
  const toDown = await metricValue(registry, 'weft_mirrored_requests_total', { mirror: 'default/down:80' });
  const results = Object.fromEntries(await Promise.all(['sent', 'failed', 'skipped'].map(async (r) => [r, await metricValue(registry, 'weft_mirrored_requests_total', { mirror: 'default/echo-v2:80', result: r })])));
  t.equal(toV2, 21, `every request mirrored at 100% (${JSON.stringify(results)})`);
  t.ok(toDown > 2 && toDown < 19, `about half mirrored at 50% (${toDown}/21)`);
  t.ok((await metricValue(registry, 'weft_mirrored_requests_total', { mirror: 'default/down:80', result: 'failed' })) === toDown, 'failed copies are counted, the client never sees them');
});
