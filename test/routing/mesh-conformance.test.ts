// The Gateway API mesh conformance cases (conformance/tests/mesh in kubernetes-sigs/gateway-api) that need
// no real capture, through two real node proxies on loopback with routes compiled by the controller's own
// store: MeshHTTPRouteMatching, MeshHTTPRouteQueryParamMatching, MeshHTTPRouteRequestHeaderModifier (rule
// and backendRef filters), MeshHTTPRouteRewritePath, the redirect tests (303, 307, 308, host and status, path,
// port, scheme), MeshTrafficSplit, MeshHTTPRouteNamedRule, MeshHTTPRouteSimpleSameNamespace,
// MeshGRPCRouteRequestHeaderModifier and MeshGRPCRouteWeight (gRPC framing over node:http2). The routes
// state each case's semantics in Weft's words; Service `echo` is backed by v1, as upstream's `echo` is by
// both versions. The cases that need capture (frontend, ports, consumer routes) run on the sandbox
// (test/e2e/routes.test.ts).
import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';

import { routingRouter } from '../../agent/routing/router.js';
import { listen, startMesh, type PodSpec } from '../proxy/fixtures/mesh.js';
import { applyPolicies, serviceRoute } from './apply-policies.js';

const PODS: PodSpec[] = [
  { name: 'client', node: 'node-a', ip: '127.0.22.1' },
  { name: 'v1', node: 'node-a', ip: '127.0.22.2' },
  { name: 'v2', node: 'node-b', ip: '127.0.22.3' },
];
const VIP = '127.0.97.50';

interface Answer {
  status: number;
  pod?: string;
  path?: string;
  /** the request headers the backend received, every value of each */
  headers?: Record<string, string[]>;
  location?: string;
}

const servers: http.Server[] = [];
const serve = (pod: string) => {
  const s = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ pod, path: req.url, headers: req.headersDistinct }));
  });
  servers.push(s);
  return s;
};
const port = await listen(serve('v1'), '127.0.22.2');
await new Promise<void>((r) => serve('v2').listen(port, '127.0.22.3', r));
// gRPC backends: one unary answer {pod, headers} in a gRPC frame, then grpc-status 0 in the trailers.
const h2servers: http2.Http2Server[] = [];
const serveGrpc = (pod: string) => {
  const s = http2.createServer();
  s.on('stream', (stream, headers) => {
    stream.on('data', () => {});
    stream.on('end', () => {
      const { ':path': _p, ':method': _m, ':authority': _a, ':scheme': _s, ...rest } = headers;
      const msg = Buffer.from(JSON.stringify({ pod, headers: rest }));
      const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), msg]);
      frame.writeUInt32BE(msg.length, 1);
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(frame);
    });
  });
  h2servers.push(s);
  return s;
};
const grpcPort = await listen(serveGrpc('v1'), '127.0.22.2');
await new Promise<void>((r) => serveGrpc('v2').listen(grpcPort, '127.0.22.3', r));
const GRPC_VIP = '127.0.97.53';
const svc = (name: string, vip: string, pods: string[]) => ({ name, vip, port: 80, targetPort: port, pods, appProtocol: 'http' });
const grpcSvc = (name: string, vip: string, pods: string[]) => ({ name, vip, port: 7070, targetPort: grpcPort, pods, appProtocol: 'grpc' });
const mesh = await startMesh(
  PODS,
  [svc('echo', VIP, ['v1']), svc('echo-v1', '127.0.97.51', ['v1']), svc('echo-v2', '127.0.97.52', ['v2']), grpcSvc('echo-grpc', GRPC_VIP, ['v1']), grpcSvc('grpc-v1', '127.0.97.54', ['v1']), grpcSvc('grpc-v2', '127.0.97.55', ['v2'])],
  { stages: { router: routingRouter() } },
);
t.teardown(async () => {
  await mesh.close();
  for (const s of servers) s.close();
  for (const s of h2servers) s.close();
});
mesh.route('client', VIP, 80);

/** one route on Service echo port 80 (a GRPCRoute: echo-grpc port 7070), in force on both proxies */
const apply = (rules: unknown[], kind: 'HTTPRoute' | 'GRPCRoute' = 'HTTPRoute') => {
  applyPolicies(mesh, [kind === 'HTTPRoute' ? serviceRoute(kind, 'conformance', 'echo', rules, 80) : serviceRoute(kind, 'conformance', 'echo-grpc', rules, 7070)]);
};

const call = (path: string, headers: Record<string, string> = {}): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const req = http.request({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.22.1', path, headers: { host: 'echo', ...headers }, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        const a: Answer = { status: res.statusCode ?? 0, ...(res.headers.location ? { location: res.headers.location } : {}) };
        resolve(res.statusCode === 200 ? { ...a, ...(JSON.parse(body) as Omit<Answer, 'status'>) } : a);
      });
    });
    req.on('error', reject);
    req.end();
  });
const who = async (path: string, headers?: Record<string, string>) => {
  const a = await call(path, headers);
  return a.status === 200 ? a.pod : String(a.status);
};

const to = (name: string, extra: Record<string, unknown> = {}) => [{ name, port: 80, ...extra }];
const prefix = (value: string) => ({ path: { type: 'PathPrefix', value } });
const exact = (value: string) => ({ path: { type: 'Exact', value } });
const header = (name: string, value: string) => ({ name, value });
const query = (name: string, value: string) => ({ name, value });

t.test('MeshHTTPRouteMatching: path prefix or header, element-wise', async (t) => {
  apply([
    { matches: [prefix('/'), { headers: [header('version', 'one')] }], backendRefs: to('echo-v1') },
    { matches: [prefix('/v2'), { headers: [header('version', 'two')] }], backendRefs: to('echo-v2') },
  ]);
  const cases: [string, Record<string, string>, string][] = [
    ['/', {}, 'v1'], ['/example', {}, 'v1'], ['/', { version: 'one' }, 'v1'], ['/v2', {}, 'v2'], ['/v2/example', {}, 'v2'],
    ['/', { version: 'two' }, 'v2'], ['/v2/', {}, 'v2'], ['/v2example', {}, 'v1'], ['/foo/v2/example', {}, 'v1'],
  ];
  for (const [path, h, want] of cases) t.equal(await who(path, h), want, `${path} ${JSON.stringify(h)}`);
});

t.test('MeshHTTPRouteQueryParamMatching: query alone, with path and headers, ORed matches, precedence, 404', async (t) => {
  apply([
    { matches: [{ queryParams: [query('animal', 'whale')] }], backendRefs: to('echo-v1') },
    { matches: [{ queryParams: [query('animal', 'dolphin')] }], backendRefs: to('echo-v2') },
    { matches: [{ ...prefix('/path1'), queryParams: [query('animal', 'whale')] }], backendRefs: to('echo-v1') },
    { matches: [{ headers: [header('version', 'one')], queryParams: [query('animal', 'whale')] }], backendRefs: to('echo-v2') },
    {
      matches: [
        { ...prefix('/path3'), queryParams: [query('animal', 'shark')] },
        { ...prefix('/path4'), headers: [header('version', 'three')], queryParams: [query('animal', 'kraken')] },
      ],
      backendRefs: to('echo-v1'),
    },
    { matches: [prefix('/path5')], backendRefs: to('echo-v1') },
    { matches: [{ queryParams: [query('animal', 'hydra')] }], backendRefs: to('echo-v2') },
  ]);
  const cases: [string, Record<string, string>, string][] = [
    ['/?animal=whale', {}, 'v1'], ['/?animal=dolphin', {}, 'v2'], ['/?animal=whale&otherparam=irrelevant', {}, 'v1'], ['/?animal=dolphin&color=yellow', {}, 'v2'],
    ['/?color=blue', {}, '404'], ['/?animal=dog', {}, '404'], ['/?animal=whaledolphin', {}, '404'], ['/', {}, '404'],
    ['/path1?animal=whale', {}, 'v1'], ['/?animal=whale', { version: 'one' }, 'v2'],
    ['/path3?animal=shark', {}, 'v1'], ['/path4?animal=kraken', { version: 'three' }, 'v1'], ['/?animal=shark', {}, '404'], ['/path4?animal=kraken', {}, '404'],
    ['/path5?animal=hydra', {}, 'v1'],
  ];
  for (const [path, h, want] of cases) t.equal(await who(path, h), want, `${path} ${JSON.stringify(h)}`);
});

const MODIFIERS: [string, Record<string, unknown>][] = [
  ['/set', { set: [header('X-Header-Set', 'set-overwrites-values')] }],
  ['/add', { add: [header('X-Header-Add', 'add-appends-values')] }],
  ['/remove', { remove: ['X-Header-Remove'] }],
  ['/multiple', { set: [header('X-Header-Set-1', 'header-set-1'), header('X-Header-Set-2', 'header-set-2')], add: [header('X-Header-Add-1', 'header-add-1'), header('X-Header-Add-2', 'header-add-2'), header('X-Header-Add-3', 'header-add-3')], remove: ['X-Header-Remove-1', 'X-Header-Remove-2'] }],
  ['/case-insensitivity', { set: [header('X-Header-Set', 'header-set')], add: [header('X-Header-Add', 'header-add')], remove: ['X-Header-Remove'] }],
];
const modifier = (m: Record<string, unknown>) => [{ type: 'RequestHeaderModifier', requestHeaderModifier: m }];

for (const where of ['rule', 'backendRef'] as const) {
  t.test(`MeshHTTPRoute${where === 'rule' ? '' : 'Backend'}RequestHeaderModifier: set, add, remove, several, case-insensitive (${where} filter)`, async (t) => {
    apply(MODIFIERS.map(([p, m]) => (where === 'rule' ? { matches: [prefix(p)], filters: modifier(m), backendRefs: to('echo-v1') } : { matches: [prefix(p)], backendRefs: to('echo-v1', { filters: modifier(m) }) })));
    const got = async (path: string, h: Record<string, string>) => (await call(path, h)).headers ?? {};
    t.same((await got('/set', { 'Some-Other-Header': 'val' }))['x-header-set'], ['set-overwrites-values']);
    const over = await got('/set', { 'Some-Other-Header': 'val', 'X-Header-Set': 'some-other-value' });
    t.same([over['x-header-set'], over['some-other-header']], [['set-overwrites-values'], ['val']], 'set overwrites, other headers kept');
    t.same((await got('/add', {}))['x-header-add'], ['add-appends-values']);
    t.same((await got('/add', { 'X-Header-Add': 'some-other-value' }))['x-header-add'], ['some-other-value', 'add-appends-values'], 'add appends a value');
    t.equal((await got('/remove', { 'X-Header-Remove': 'val' }))['x-header-remove'], undefined);
    const m = await got('/multiple', { 'X-Header-Set-2': 'set-val-2', 'X-Header-Add-2': 'add-val-2', 'X-Header-Remove-2': 'remove-val-2', 'Another-Header': 'another-header-val' });
    t.same(
      [m['x-header-set-1'], m['x-header-set-2'], m['x-header-add-1'], m['x-header-add-2'], m['x-header-add-3'], m['another-header'], m['x-header-remove-1'], m['x-header-remove-2']],
      [['header-set-1'], ['header-set-2'], ['header-add-1'], ['add-val-2', 'header-add-2'], ['header-add-3'], ['another-header-val'], undefined, undefined],
    );
    const c = await got('/case-insensitivity', { 'x-header-set': 'original-val-set', 'x-header-add': 'original-val-add', 'x-header-remove': 'original-val-remove', 'Another-Header': 'another-header-val' });
    t.same([c['x-header-set'], c['x-header-add'], c['x-header-remove'], c['another-header']], [['header-set'], ['original-val-add', 'header-add'], undefined, ['another-header-val']], 'names match whatever their case');
  });
}

t.test('MeshHTTPRouteRewritePath: prefix, prefix to "/", full path, with header modifiers', async (t) => {
  const rewrite = (path: Record<string, string>) => ({ type: 'URLRewrite', urlRewrite: { path } });
  const mods = { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [header('X-Header-Set', 'set-overwrites-values')], add: [header('X-Header-Add', 'header-val-1'), header('X-Header-Add-Append', 'header-val-2')], remove: ['X-Header-Remove'] } };
  apply([
    { matches: [prefix('/prefix/one')], filters: [rewrite({ type: 'ReplacePrefixMatch', replacePrefixMatch: '/one' })], backendRefs: to('echo-v1') },
    { matches: [prefix('/strip-prefix')], filters: [rewrite({ type: 'ReplacePrefixMatch', replacePrefixMatch: '/' })], backendRefs: to('echo-v1') },
    { matches: [prefix('/full/one')], filters: [rewrite({ type: 'ReplaceFullPath', replaceFullPath: '/one' })], backendRefs: to('echo-v1') },
    { matches: [prefix('/full/rewrite-path-and-modify-headers')], filters: [rewrite({ type: 'ReplaceFullPath', replaceFullPath: '/test' }), mods], backendRefs: to('echo-v1') },
    { matches: [prefix('/prefix/rewrite-path-and-modify-headers')], filters: [rewrite({ type: 'ReplacePrefixMatch', replacePrefixMatch: '/prefix' }), mods], backendRefs: to('echo-v1') },
  ]);
  for (const [from, want] of [['/prefix/one/two', '/one/two'], ['/strip-prefix/three', '/three'], ['/strip-prefix', '/'], ['/full/one/two', '/one']]) {
    t.equal((await call(from!)).path, want, `${from} → ${want}`);
  }
  const h = { 'X-Header-Remove': 'remove-val', 'X-Header-Add-Append': 'append-val-1', 'X-Header-Set': 'set-val' };
  for (const [from, want] of [['/full/rewrite-path-and-modify-headers/test', '/test'], ['/prefix/rewrite-path-and-modify-headers/one', '/prefix/one']]) {
    const a = await call(from!, h);
    const g = a.headers ?? {};
    t.same([a.path, g['x-header-add'], g['x-header-add-append'], g['x-header-set'], g['x-header-remove']], [want, ['header-val-1'], ['append-val-1', 'header-val-2'], ['set-overwrites-values'], undefined], `${from}: rewritten and modified`);
  }
});

t.test('redirects: 303, 307, 308, hostname and status, path, port, scheme', async (t) => {
  const redirect = (p: string, r: Record<string, unknown>) => ({ matches: [prefix(p)], filters: [{ type: 'RequestRedirect', requestRedirect: r }] });
  const full = (v: string) => ({ type: 'ReplaceFullPath', replaceFullPath: v });
  const pre = (v: string) => ({ type: 'ReplacePrefixMatch', replacePrefixMatch: v });
  apply([
    redirect('/redirect', { statusCode: 303 }),
    redirect('/temporary', { statusCode: 307 }),
    redirect('/permanent', { statusCode: 308 }),
    redirect('/hostname-redirect', { hostname: 'example.org' }),
    redirect('/host-and-status', { statusCode: 301, hostname: 'example.org' }),
    redirect('/original-prefix', { path: pre('/replacement-prefix') }),
    redirect('/full', { path: full('/full-path-replacement') }),
    redirect('/path-and-host', { hostname: 'example.org', path: pre('/replacement-prefix') }),
    redirect('/path-and-status', { path: pre('/replacement-prefix'), statusCode: 301 }),
    redirect('/full-path-and-host', { hostname: 'example.org', path: full('/replacement-full') }),
    redirect('/full-path-and-status', { path: full('/replacement-full'), statusCode: 301 }),
    redirect('/port', { port: 8083 }),
    redirect('/port-and-host', { hostname: 'example.org', port: 8083 }),
    redirect('/port-and-status', { port: 8083, statusCode: 301 }),
    redirect('/port-and-host-and-status', { port: 8083, hostname: 'example.org', statusCode: 302 }),
    redirect('/scheme', { scheme: 'https' }),
    redirect('/scheme-and-host', { hostname: 'example.org', scheme: 'https' }),
    redirect('/scheme-and-status', { scheme: 'https', statusCode: 301 }),
    redirect('/scheme-and-host-and-status', { scheme: 'https', statusCode: 302, hostname: 'example.org' }),
  ]);
  // The Service port is 80, http's own: left out of Location unless the redirect names another port
  // (Gateway API: a scheme change takes that scheme's well-known port, also left out).
  const cases: [string, number, string][] = [
    ['/redirect', 303, 'http://echo/redirect'],
    ['/temporary', 307, 'http://echo/temporary'],
    ['/permanent', 308, 'http://echo/permanent'],
    ['/hostname-redirect', 302, 'http://example.org/hostname-redirect'],
    ['/host-and-status', 301, 'http://example.org/host-and-status'],
    ['/original-prefix/lemon', 302, 'http://echo/replacement-prefix/lemon'],
    ['/full/path/original', 302, 'http://echo/full-path-replacement'],
    ['/path-and-host', 302, 'http://example.org/replacement-prefix'],
    ['/path-and-status', 301, 'http://echo/replacement-prefix'],
    ['/full-path-and-host', 302, 'http://example.org/replacement-full'],
    ['/full-path-and-status', 301, 'http://echo/replacement-full'],
    ['/port', 302, 'http://echo:8083/port'],
    ['/port-and-host', 302, 'http://example.org:8083/port-and-host'],
    ['/port-and-status', 301, 'http://echo:8083/port-and-status'],
    ['/port-and-host-and-status', 302, 'http://example.org:8083/port-and-host-and-status'],
    ['/scheme', 302, 'https://echo/scheme'],
    ['/scheme-and-host', 302, 'https://example.org/scheme-and-host'],
    ['/scheme-and-status', 301, 'https://echo/scheme-and-status'],
    ['/scheme-and-host-and-status', 302, 'https://example.org/scheme-and-host-and-status'],
  ];
  for (const [path, status, location] of cases) {
    const a = await call(path);
    t.same([a.status, a.location], [status, location], path);
  }
});

t.test('MeshTrafficSplit, MeshHTTPRouteNamedRule, MeshHTTPRouteSimpleSameNamespace', async (t) => {
  apply([
    { matches: [exact('/v1')], backendRefs: to('echo-v1') },
    { matches: [exact('/v2')], backendRefs: to('echo-v2') },
    { name: 'named-rule', matches: [prefix('/named')], backendRefs: to('echo-v1') },
    { matches: [prefix('/unnamed')], backendRefs: to('echo-v2') },
  ]);
  t.same([await who('/v1'), await who('/v2'), await who('/named'), await who('/unnamed')], ['v1', 'v2', 'v1', 'v2']);
  apply([{ backendRefs: to('echo-v1') }]);
  t.equal(await who('/'), 'v1', 'a route with one rule and no match sends everything to its backend');
});

t.test('MeshGRPCRouteRequestHeaderModifier and MeshGRPCRouteWeight', async (t) => {
  mesh.route('client', GRPC_VIP, 7070);
  const session = http2.connect('http://echo-grpc:7070', { createConnection: () => net.connect({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.22.1' }) });
  t.teardown(() => session.close());
  const unary = (headers: Record<string, string> = {}) =>
    new Promise<{ grpcStatus?: string; pod?: string; headers?: Record<string, string> }>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': '/weft.test.Echo/Get', 'content-type': 'application/grpc', te: 'trailers', ...headers });
      let grpcStatus: string | undefined;
      const chunks: Buffer[] = [];
      req.on('response', (h) => h['grpc-status'] !== undefined && (grpcStatus = String(h['grpc-status'])));
      req.on('trailers', (tr) => (grpcStatus = String(tr['grpc-status'])));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ ...(grpcStatus !== undefined ? { grpcStatus } : {}), ...(body.length > 5 ? (JSON.parse(body.subarray(5).toString()) as object) : {}) });
      });
      req.on('error', reject);
      req.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  const testCase = (value: string) => ({ headers: [header('x-test-case', value)] });
  const mod = (m: Record<string, unknown>) => [{ type: 'RequestHeaderModifier', requestHeaderModifier: m }];
  const grpcTo = (name: string) => [{ name, port: 7070 }];
  apply(
    [
      { matches: [testCase('set')], filters: mod({ set: [header('x-header-set', 'set-overwrites-values')] }), backendRefs: grpcTo('grpc-v1') },
      { matches: [testCase('add')], filters: mod({ add: [header('x-header-add', 'add-appends-values')] }), backendRefs: grpcTo('grpc-v1') },
      { matches: [testCase('remove')], filters: mod({ remove: ['x-header-remove'] }), backendRefs: grpcTo('grpc-v1') },
      { matches: [testCase('multi')], filters: mod({ set: [header('x-header-set-1', 'header-set-1'), header('x-header-set-2', 'header-set-2')], add: [header('x-header-add-1', 'header-add-1'), header('x-header-add-2', 'header-add-2')], remove: ['x-header-remove-1', 'x-header-remove-2'] }), backendRefs: grpcTo('grpc-v2') },
    ],
    'GRPCRoute',
  );
  const set = await unary({ 'x-test-case': 'set', 'some-other-header': 'kept', 'x-header-set': 'overwritten' });
  t.same([set.grpcStatus, set.pod, set.headers?.['x-header-set'], set.headers?.['some-other-header']], ['0', 'v1', 'set-overwrites-values', 'kept'], 'set overwrites');
  const add = await unary({ 'x-test-case': 'add', 'x-header-add': 'first' });
  t.equal(add.headers?.['x-header-add'], 'first, add-appends-values', 'add appends (node:http2 joins the values)');
  const remove = await unary({ 'x-test-case': 'remove', 'x-header-remove': 'gone' });
  t.same([remove.pod, remove.headers?.['x-header-remove']], ['v1', undefined], 'remove removes');
  const multi = await unary({ 'x-test-case': 'multi', 'x-header-set-2': 'old', 'x-header-add-2': 'add-header-2', 'x-header-remove-2': 'gone' });
  const mh = multi.headers ?? {};
  t.same([multi.pod, mh['x-header-set-1'], mh['x-header-set-2'], mh['x-header-add-1'], mh['x-header-add-2'], mh['x-header-remove-1'], mh['x-header-remove-2']], ['v2', 'header-set-1', 'header-set-2', 'header-add-1', 'add-header-2, header-add-2', undefined, undefined], 'several at once, to the other backend');
  t.equal((await unary({ 'x-test-case': 'none' })).grpcStatus, '12', 'no rule matches: UNIMPLEMENTED');

  // A backend that does not exist, at weight 0, takes no share and turns no call into an error.
  apply([{ backendRefs: [{ name: 'grpc-v1', port: 7070, weight: 70 }, { name: 'grpc-v2', port: 7070, weight: 30 }, { name: 'grpc-v3', port: 7070, weight: 0 }] }], 'GRPCRoute');
  const n = 500;
  const pods: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = await unary();
    const k = r.grpcStatus === '0' ? r.pod! : `status-${r.grpcStatus}`;
    pods[k] = (pods[k] ?? 0) + 1;
  }
  // Binomial(500, 0.7): standard deviation 10.2; ±46 is 4.5 of them (a false failure about once in 10^5 runs).
  t.ok(Math.abs((pods.v1 ?? 0) - 350) <= 46 && (pods.v1 ?? 0) + (pods.v2 ?? 0) === n, `70/30 over ${n} calls, every call answered: ${JSON.stringify(pods)}`);
});
