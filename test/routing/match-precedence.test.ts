// Matching and Gateway API precedence, as tables. Cases follow the Gateway API conformance tests
// (mesh/httproute-matching, httproute-query-param-matching, mesh-consumer-route, grpcroute matching).
import t from 'tap';

import type { RouteEntry } from '../../common/policy.js';
import type { CompiledMatch, CompiledRule } from '../../common/policy/route.js';
import { compileMatch, prefixMatches, queryParam, type MatchInput } from '../../agent/routing/match.js';
import { matchRoute, RouteTables } from '../../agent/routing/table.js';

function req(target: string, headers: Record<string, string> = {}, method = 'GET'): MatchInput {
  const q = target.indexOf('?');
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method, path: q < 0 ? target : target.slice(0, q), query: q < 0 ? '' : target.slice(q + 1), header: (n) => lower[n] };
}
const m = (o: Partial<CompiledMatch> = {}): CompiledMatch => ({ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [], ...o });
const rule = (name: string, index: number, matches: CompiledMatch[]): CompiledRule => ({ name, index, matches, filters: [], backends: [{ service: `shop/${name}`, port: 80, weight: 1, filters: [] }], timeouts: {} });
const route = (ns: string, name: string, rules: CompiledRule[], o: { parent?: string; port?: number; createdMs?: number; kind?: 'HTTPRoute' | 'GRPCRoute' } = {}): RouteEntry => ({
  kind: o.kind ?? 'HTTPRoute',
  key: `${o.kind ?? 'HTTPRoute'}/${ns}/${name}`,
  namespace: ns,
  name,
  route: { parents: [{ service: o.parent ?? 'shop/echo', ...(o.port ? { port: o.port } : {}) }], namespace: ns, createdMs: o.createdMs ?? 0, rules },
});

t.test('path prefix is element-wise; query parsing', async (t) => {
  const cases: [string, string, boolean][] = [
    ['/v2', '/v2', true],
    ['/v2', '/v2/', true],
    ['/v2', '/v2/example', true],
    ['/v2', '/v2example', false],
    ['/v2/', '/v2', true],
    ['/v2/', '/v2/x', true],
    ['/v2', '/foo/v2/example', false],
    ['/', '/anything', true],
  ];
  for (const [prefix, path, want] of cases) t.equal(prefixMatches(prefix, path), want, `${prefix} ~ ${path}`);
  t.equal(queryParam('a=1&animal=whale&a=2', 'a'), '1', 'first value of a repeated name');
  t.equal(queryParam('q=hello%20world+x', 'q'), 'hello world x');
  t.equal(queryParam('flag', 'flag'), '');
  t.equal(queryParam('', 'x'), undefined);
});

t.test('one match: every condition ANDed', async (t) => {
  const cases: [CompiledMatch, MatchInput, boolean, string][] = [
    [m({ path: { type: 'Exact', value: '/a' } }), req('/a?x=1'), true, 'exact ignores the query'],
    [m({ path: { type: 'Exact', value: '/a' } }), req('/a/'), false, 'exact is exact'],
    [m({ path: { type: 'RegularExpression', value: '/v[0-9]+/.*' } }), req('/v12/x'), true, 'regex'],
    [m({ path: { type: 'RegularExpression', value: '/v[0-9]+' } }), req('/v12/x'), false, 'regex matches the whole path'],
    [m({ headers: [{ type: 'Exact', name: 'version', value: 'two' }] }), req('/', { Version: 'two' }), true, 'header names case-insensitive'],
    [m({ headers: [{ type: 'Exact', name: 'version', value: 'two' }] }), req('/', { version: 'Two' }), false, 'header values case-sensitive'],
    [m({ headers: [{ type: 'RegularExpression', name: 'x', value: 'a.c' }] }), req('/', { x: 'abc' }), true, 'header regex'],
    [m({ headers: [{ type: 'RegularExpression', name: 'x', value: 'a.c' }] }), req('/', { x: 'abcd' }), false, 'header regex whole value'],
    [m({ headers: [{ type: 'Exact', name: 'x', value: '' }] }), req('/'), false, 'absent header never matches'],
    [m({ queryParams: [{ type: 'Exact', name: 'animal', value: 'whale' }] }), req('/?animal=whale'), true, 'query exact'],
    [m({ queryParams: [{ type: 'Exact', name: 'animal', value: 'whale' }] }), req('/?Animal=whale'), false, 'query names case-sensitive'],
    [m({ queryParams: [{ type: 'RegularExpression', name: 'id', value: '[0-9]+' }] }), req('/?id=42'), true, 'query regex'],
    [m({ method: 'POST' }), req('/', {}, 'GET'), false, 'method'],
    [m({ method: 'POST', path: { type: 'PathPrefix', value: '/x' } }), req('/x/y', {}, 'POST'), true, 'method and path'],
  ];
  for (const [match, r, want, why] of cases) t.equal(compileMatch(match).test(r), want, why);
});

t.test('precedence across all rules of all attached routes', async (t) => {
  // mesh/httproute-matching: ORed matches in two rules
  const conformance = route('shop', 'mesh-matching', [
    rule('v1', 0, [m(), m({ headers: [{ type: 'Exact', name: 'version', value: 'one' }] })]),
    rule('v2', 1, [m({ path: { type: 'PathPrefix', value: '/v2' } }), m({ headers: [{ type: 'Exact', name: 'version', value: 'two' }] })]),
  ]);
  const tables = new RouteTables({ policies: [conformance] });
  const table = tables.lookup('shop/echo', 80, 'shop');
  const cases: [MatchInput, string][] = [
    [req('/'), 'v1'],
    [req('/example'), 'v1'],
    [req('/', { Version: 'one' }), 'v1'],
    [req('/v2'), 'v2'],
    [req('/v2/example'), 'v2'],
    [req('/', { Version: 'two' }), 'v2'],
    [req('/v2/'), 'v2'],
    [req('/v2example'), 'v1'],
    [req('/foo/v2/example'), 'v1'],
  ];
  for (const [r, want] of cases) t.equal(matchRoute(table, r, false)?.rule.name, want, `${r.path} ${JSON.stringify(r.header('version') ?? '')}`);

  // the spec's order: Exact > longest prefix > method > most headers > most query params > oldest > name > rule order
  const old = route('shop', 'zz-old', [rule('old-prefix', 0, [m({ path: { type: 'PathPrefix', value: '/api' } })])], { createdMs: 1 });
  const young = route('shop', 'aa-young', [
    rule('young-prefix', 0, [m({ path: { type: 'PathPrefix', value: '/api' } })]),
    rule('exact', 1, [m({ path: { type: 'Exact', value: '/api/v1' } })]),
    rule('longer', 2, [m({ path: { type: 'PathPrefix', value: '/api/v1' } })]),
    rule('method', 3, [m({ path: { type: 'PathPrefix', value: '/api' }, method: 'DELETE' })]),
    rule('headers2', 4, [m({ path: { type: 'PathPrefix', value: '/api' }, headers: [{ type: 'Exact', name: 'a', value: '1' }, { type: 'Exact', name: 'b', value: '1' }] })]),
    rule('headers1', 5, [m({ path: { type: 'PathPrefix', value: '/api' }, method: 'PUT', headers: [{ type: 'Exact', name: 'a', value: '1' }] })]),
    rule('query', 6, [m({ path: { type: 'PathPrefix', value: '/api' }, headers: [{ type: 'Exact', name: 'a', value: '1' }, { type: 'Exact', name: 'b', value: '1' }], queryParams: [{ type: 'Exact', name: 'q', value: '1' }] })]),
    rule('regex', 7, [m({ path: { type: 'RegularExpression', value: '/api/.*' } })]),
    rule('first', 8, [m({ path: { type: 'PathPrefix', value: '/same' } })]),
    rule('second', 9, [m({ path: { type: 'PathPrefix', value: '/same' } })]),
  ], { createdMs: 2 });
  const sameAge = [route('shop', 'b-route', [rule('b', 0, [m({ path: { type: 'Exact', value: '/tie' } })])], { createdMs: 5 }), route('shop', 'a-route', [rule('a', 0, [m({ path: { type: 'Exact', value: '/tie' } })])], { createdMs: 5 })];
  const t2 = new RouteTables({ policies: [young, old, ...sameAge] }).lookup('shop/echo', 80, 'shop');
  const prec: [MatchInput, string, string][] = [
    [req('/api/v1'), 'exact', 'Exact beats every prefix'],
    [req('/api/v1/x'), 'longer', 'longest prefix'],
    [req('/api/x', {}, 'DELETE'), 'method', 'a method match beats header matches'],
    [req('/api/x', { a: '1' }, 'PUT'), 'headers1', 'method first, then headers'],
    [req('/api/x?q=1', { a: '1', b: '1' }), 'query', 'more query matches'],
    [req('/api/x', { a: '1', b: '1' }), 'headers2', 'more header matches'],
    [req('/api/x'), 'old-prefix', 'same specificity: the oldest route'],
    [req('/tie'), 'a', 'same age: alphabetical <ns>/<name>'],
    [req('/same'), 'first', 'same route: rule order'],
    [req('/nothing'), '', 'nothing matches: no rule (404)'],
  ];
  for (const [r, want, why] of prec) t.equal(matchRoute(t2, r, false)?.rule.name ?? '', want, why);
  t.equal(matchRoute(new RouteTables({ policies: [young] }).lookup('shop/echo', 80, 'shop'), req('/api/xyz/1'), false)?.rule.name, 'young-prefix', 'regex paths rank after prefixes');
});

t.test('attachment: ports, producer and consumer routes', async (t) => {
  const producer = route('shop', 'producer', [rule('producer', 0, [m()])]);
  const consumer = route('web', 'consumer', [rule('consumer', 0, [m()])]);
  const stranger = route('other', 'stranger', [rule('stranger', 0, [m()])]);
  const port81 = route('shop', 'port81', [rule('port81', 0, [m()])], { parent: 'shop/api', port: 81 });
  const tables = new RouteTables({ policies: [producer, consumer, port81] });
  const name = (svc: string, port: number, ns: string | undefined) => matchRoute(tables.lookup(svc, port, ns), req('/'), false)?.rule.name;
  t.equal(name('shop/echo', 80, 'shop'), 'producer', 'the Service namespace gets the producer route');
  t.equal(name('shop/echo', 80, 'other'), 'producer', 'any other namespace too');
  t.equal(name('shop/echo', 80, 'web'), 'consumer', 'a consumer route replaces the producer route for its namespace');
  t.equal(name('shop/echo', 80, undefined), 'producer', 'a caller outside the mesh gets the producer route');
  t.equal(name('shop/api', 81, 'shop'), 'port81');
  t.equal(name('shop/api', 80, 'shop'), undefined, 'a route on port 81 does not touch port 80');
  t.same(tables.lookup('shop/api', 80, 'shop'), { http: [], grpc: [] });
  t.notOk(tables.has('shop/none'));
  const t3 = new RouteTables({ policies: [stranger] });
  t.equal(matchRoute(t3.lookup('shop/echo', 80, 'web'), req('/'), false), undefined, 'a route in a third namespace does not apply to callers elsewhere');
  t.equal(matchRoute(t3.lookup('shop/echo', 80, 'other'), req('/'), false)?.rule.name, 'stranger', 'but applies to its own namespace');
});

t.test('GRPCRoute precedence and HTTP/gRPC tables', async (t) => {
  const g = (name: string, index: number, service?: string, method?: string, headers = 0): CompiledRule =>
    rule(name, index, [
      {
        path: service && method ? { type: 'Exact', value: `/${service}/${method}` } : service ? { type: 'PathPrefix', value: `/${service}` } : method ? { type: 'RegularExpression', value: `/[^/]+/${method}` } : { type: 'PathPrefix', value: '/' },
        headers: Array.from({ length: headers }, (_, i) => ({ type: 'Exact' as const, name: `h${i}`, value: '1' })),
        queryParams: [],
        method: 'POST',
        ...(service || method ? { grpc: { type: 'Exact' as const, ...(service ? { service } : {}), ...(method ? { method } : {}) } } : {}),
      },
    ]);
  const grpcRoute = route('shop', 'grpc', [g('any', 0), g('svc', 1, 'shop.Cart'), g('method', 2, undefined, 'Get'), g('both', 3, 'shop.Cart', 'Get'), g('headers', 4, undefined, undefined, 1)], { kind: 'GRPCRoute' });
  const httpRoute = route('shop', 'http', [rule('http', 0, [m()])]);
  const table = new RouteTables({ policies: [grpcRoute, httpRoute] }).lookup('shop/echo', 80, 'shop');
  const post = (p: string, h: Record<string, string> = {}) => req(p, h, 'POST');
  t.equal(matchRoute(table, post('/shop.Cart/Get'), true)?.rule.name, 'both');
  t.equal(matchRoute(table, post('/shop.Cart/List'), true)?.rule.name, 'svc', 'more service characters beat a method match');
  t.equal(matchRoute(table, post('/other.Svc/Get'), true)?.rule.name, 'method');
  t.equal(matchRoute(table, post('/other.Svc/List', { h0: '1' }), true)?.rule.name, 'headers');
  t.equal(matchRoute(table, post('/other.Svc/List'), true)?.rule.name, 'any');
  t.equal(matchRoute(table, post('/shop.Cart/Get'), false)?.rule.name, 'http', 'a plain HTTP request uses the HTTPRoute rules');
  const onlyGrpc = new RouteTables({ policies: [grpcRoute] }).lookup('shop/echo', 80, 'shop');
  t.equal(matchRoute(onlyGrpc, req('/x'), false), undefined, 'an HTTP GET to a Service with only GRPCRoutes matches nothing (404)');
});
