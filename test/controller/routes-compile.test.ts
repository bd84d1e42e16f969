// HTTPRoute / GRPCRoute: what the store refuses (naming object and field), what the controller compiles
// for the agents, and the route status the operators see.
import t from 'tap';

import { silentLogger } from '../../common/log.js';
import type { RouteEntry } from '../../common/policy.js';
import type { KubeObject } from '../../controller/sources/types.js';
import { BUILTIN_KINDS, KindRegistry } from '../../controller/store/kinds.js';
import { ObjectStore } from '../../controller/store/object-store.js';
import { translate } from '../../controller/translate/mesh-config.js';
import { routeStatuses } from '../../controller/translate/policy/route-status.js';

const opts = { trustDomain: 'cluster.local', rootNamespace: 'weft-system' };
const newStore = () => new ObjectStore(new KindRegistry(BUILTIN_KINDS), silentLogger);
const GW = 'gateway.networking.k8s.io/v1';
const svc = (namespace: string, name: string, ports = [80]): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace },
  spec: { clusterIP: `10.97.0.${name.length}`, selector: { app: name }, ports: ports.map((port) => ({ port })) },
});
const parent = (name: string, extra: Record<string, unknown> = {}) => ({ group: '', kind: 'Service', name, ...extra });
const route = (name: string, spec: Record<string, unknown>, kind = 'HTTPRoute', namespace = 'shop'): KubeObject => ({ apiVersion: GW, kind, metadata: { name, namespace, creationTimestamp: '2026-12-01T00:00:00Z' }, spec });

t.test('refused when applied, naming object and field', async (t) => {
  const s = newStore();
  const r = (rule: Record<string, unknown>, extra: Record<string, unknown> = {}) => route('r', { parentRefs: [parent('cart')], rules: [rule], ...extra });
  const cases: [KubeObject, RegExp][] = [
    [route('r', { rules: [{}] }), /HTTPRoute shop\/r, field spec\.parentRefs: must name at least one Service/],
    [route('r', { parentRefs: [{ name: 'gw' }] }), /field spec\.parentRefs\[0\]\.kind: must be kind: Service with group: "" \(got the default group gateway\.networking\.k8s\.io, kind Gateway/],
    [route('r', { parentRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }] }), /field spec\.parentRefs\[0\]\.kind: .*Weft has no Gateways/],
    [route('r', { parentRefs: [parent('cart', { sectionName: 'http' })] }), /field spec\.parentRefs\[0\]\.sectionName: is not supported/],
    [r({}, { hostnames: ['cart.example'] }), /field spec\.hostnames: is not supported on mesh routes/],
    [r({ sessionPersistence: { sessionName: 'x' } }), /field spec\.rules\[0\]\.sessionPersistence: is not supported by Weft/],
    [r({ filters: [{ type: 'CORS', cors: {} }] }), /field spec\.rules\[0\]\.filters\[0\]\.type: CORS filters are not supported by Weft/],
    [r({ filters: [{ type: 'ExtensionRef', extensionRef: { group: 'x', kind: 'y', name: 'z' } }] }), /filters\[0\]\.type: ExtensionRef filters are not supported/],
    [r({ filters: [{ type: 'RequestHeaderModifier' }] }), /filters\[0\]\.requestHeaderModifier: is required for a RequestHeaderModifier filter/],
    [r({ filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: {}, urlRewrite: {} }] }), /filters\[0\]\.urlRewrite: is only allowed with type URLRewrite/],
    [r({ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { group: 'x.io', kind: 'Bucket', name: 'b', port: 1 } } }] }), /filters\[0\]\.requestMirror\.backendRef\.kind: mirror backend must be a core Service/],
    [r({ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'b' } } }] }), /requestMirror\.backendRef\.port: is required/],
    [r({ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'b', port: 80 }, percent: 5, fraction: { numerator: 1 } } }] }), /requestMirror\.fraction: percent and fraction are alternatives/],
    [r({ filters: [{ type: 'RequestRedirect', requestRedirect: {} }, { type: 'URLRewrite', urlRewrite: {} }] }), /spec\.rules\[0\]\.filters: RequestRedirect and URLRewrite cannot be used together/],
    [r({ filters: [{ type: 'RequestRedirect', requestRedirect: {} }], backendRefs: [{ name: 'cart', port: 80 }] }), /spec\.rules\[0\]\.backendRefs: must be empty when the rule has a RequestRedirect/],
    [r({ filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/x' } } }] , matches: [{ path: { type: 'Exact', value: '/a' } }] }), /urlRewrite\.path\.type: ReplacePrefixMatch needs the rule to have exactly one match, with a PathPrefix path/],
    [r({ filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-A', value: '1' }], remove: ['x-a'] } }] }), /requestHeaderModifier\.remove\[0\]: header "x-a" is modified twice/],
    [r({ filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: {} }, { type: 'RequestHeaderModifier', requestHeaderModifier: {} }] }), /filters\[1\]\.type: RequestHeaderModifier appears twice/],
    [r({ backendRefs: [{ name: 'cart', port: 80, filters: [{ type: 'URLRewrite', urlRewrite: {} }] }] }), /backendRefs\[0\]\.filters\[0\]\.type: "URLRewrite" is not a filter Weft supports on a backendRef/],
    [r({ backendRefs: [{ name: 'cart' }] }), /backendRefs\[0\]\.port: is required when the backend is a Service/],
    [r({ matches: [{ path: { type: 'PathPrefix', value: 'v2' } }] }), /matches\[0\]\.path\.value: must start with "\/"/],
    [r({ matches: [{ path: { type: 'RegularExpression', value: '/(' } }] }), /matches\[0\]\.path\.value: is not a valid regular expression/],
    [r({ matches: [{ headers: [{ name: 'Version', value: '1' }, { name: 'version', value: '2' }] }] }), /matches\[0\]\.headers\[1\]\.name: "version" is matched twice/],
    [r({ timeouts: { request: '1s', backendRequest: '2s' } }), /timeouts\.backendRequest: must not be longer than timeouts\.request/],
    [r({ timeouts: { request: '1x' } }), /timeouts\.request: must match/],
    [route('g', { parentRefs: [parent('cart')], rules: [{ filters: [{ type: 'URLRewrite', urlRewrite: {} }] }] }, 'GRPCRoute'), /GRPCRoute shop\/g, field spec\.rules\[0\]\.filters\[0\]\.type: "URLRewrite" is not a filter Weft supports on a GRPCRoute rule/],
    [route('g', { parentRefs: [parent('cart')], rules: [{ matches: [{ method: { type: 'Exact' } }] }] }, 'GRPCRoute'), /matches\[0\]\.method: must set service, method or both/],
    [route('g', { parentRefs: [parent('cart')], rules: [{ matches: [{ method: { service: 'a b' } }] }] }, 'GRPCRoute'), /matches\[0\]\.method\.service: "a b" is not a valid gRPC service name/],
    [route('g', { parentRefs: [parent('cart')], rules: [{ retry: { attempts: 2 } }] }, 'GRPCRoute'), /spec\.rules\[0\]\.retry: is not part of GRPCRoute; set timeouts and retries .* in a TrafficPolicy/],
    [route('g', { parentRefs: [parent('cart')], hostnames: ['x'] }, 'GRPCRoute'), /GRPCRoute shop\/g, field spec\.hostnames/],
  ];
  for (const [obj, re] of cases) t.throws(() => s.upsert(obj, 'test'), { code: 'WEFT_ERR_CONFIG', message: re }, re.source);
  t.equal(s.size(), 0, 'nothing stored');
});

t.test('compiled routes: typed matches, resolved backends, filters, timeouts, retry', async (t) => {
  const s = newStore();
  for (const o of [svc('shop', 'cart'), svc('shop', 'cart-v2'), svc('shop', 'audit', [9000]), svc('web', 'front')]) s.upsert(o, 'test');
  s.upsert(
    route('cart', {
      parentRefs: [parent('cart', { port: 80 })],
      rules: [
        {
          name: 'canary',
          matches: [{ path: { type: 'PathPrefix', value: '/cart' }, headers: [{ name: 'X-Canary', value: 'yes' }], queryParams: [{ type: 'RegularExpression', name: 'v', value: '^2' }], method: 'GET' }],
          filters: [
            { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Set', value: 'a' }], add: [{ name: 'X-Add', value: 'b' }], remove: ['X-Gone'] } },
            { type: 'RequestMirror', requestMirror: { backendRef: { name: 'audit', port: 9000 }, fraction: { numerator: 1, denominator: 4 } } },
          ],
          backendRefs: [
            { name: 'cart', port: 80, weight: 70 },
            { name: 'cart-v2', port: 80, weight: 30, filters: [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'x-v', value: '2' }] } }] },
            { name: 'cart-v3', port: 80, weight: 0 },
            { name: 'front', namespace: 'web', port: 80 },
          ],
          timeouts: { request: '1m30s', backendRequest: '500ms' },
          retry: { attempts: 3, codes: [503], backoff: '100ms' },
        },
        { filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplaceFullPath', replaceFullPath: '/new' } } }], timeouts: { request: '0s' } },
      ],
    }),
    'test',
  );
  s.upsert(route('grpc', { parentRefs: [parent('cart')], rules: [{ matches: [{ method: { service: 'shop.Cart', method: 'Get' } }, { method: { method: 'List' } }, { method: { type: 'RegularExpression', service: 'shop\\..*' } }], backendRefs: [{ name: 'cart', port: 80 }] }] }, 'GRPCRoute'), 'test');
  // a consumer route in another namespace, sending to the Service it overrides
  s.upsert(route('consumer', { parentRefs: [parent('cart', { namespace: 'shop' })], rules: [{ backendRefs: [{ name: 'cart', namespace: 'shop', port: 80 }] }] }, 'HTTPRoute', 'web'), 'test');
  const cfg = translate(s, opts, 1);
  const entries = cfg.policies.filter((p): p is RouteEntry => p.kind === 'HTTPRoute' || p.kind === 'GRPCRoute');
  t.same(entries.map((e) => e.key), ['GRPCRoute/shop/grpc', 'HTTPRoute/shop/cart', 'HTTPRoute/web/consumer']);
  const cart = entries[1]!.route;
  t.same(cart.parents, [{ service: 'shop/cart', port: 80 }]);
  t.equal(cart.createdMs, Date.parse('2026-12-01T00:00:00Z'));
  const [r0, r1] = cart.rules;
  t.same(r0!.matches, [{ path: { type: 'PathPrefix', value: '/cart' }, headers: [{ type: 'Exact', name: 'x-canary', value: 'yes' }], queryParams: [{ type: 'RegularExpression', name: 'v', value: '^2' }], method: 'GET' }], 'header names lower-cased, defaults filled');
  t.same(r0!.filters, [
    { type: 'RequestHeaderModifier', modifier: { set: [['X-Set', 'a']], add: [['X-Add', 'b']], remove: ['x-gone'] } },
    { type: 'RequestMirror', backend: { service: 'shop/audit', port: 9000 }, percent: 25 },
  ]);
  t.same(r0!.backends, [
    { service: 'shop/cart', port: 80, weight: 70, filters: [] },
    { service: 'shop/cart-v2', port: 80, weight: 30, filters: [{ type: 'ResponseHeaderModifier', modifier: { set: [['x-v', '2']], add: [], remove: [] } }] },
    { service: 'shop/cart-v3', port: 80, unresolved: 'BackendNotFound', weight: 0, filters: [] },
    { service: 'web/front', port: 80, weight: 1, filters: [] },
  ]);
  t.same(r0!.timeouts, { requestMs: 90_000, backendRequestMs: 500 });
  t.same(r0!.retry, { attempts: 3, codes: [503], backoffMs: 100 });
  t.equal(r0!.name, 'canary');
  t.same(r1!.matches, [{ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] }], 'no matches = PathPrefix /');
  t.same(r1!.filters, [{ type: 'RequestRedirect', path: { type: 'ReplaceFullPath', value: '/new' }, statusCode: 302 }], 'redirect defaults to 302');
  t.same(r1!.timeouts, { requestMs: 0 }, '0s = disabled, kept as 0');
  t.equal(r1!.name, 'rule-1');
  t.notOk(r1!.retry);

  const g = entries[0]!.route.rules[0]!;
  t.same(g.matches.map((m) => m.path), [
    { type: 'Exact', value: '/shop.Cart/Get' },
    { type: 'RegularExpression', value: '/[^/]+/List' },
    { type: 'RegularExpression', value: '/(?:shop\\..*)/(?:[^/]+)' },
  ]);
  t.same(g.matches[0]!.grpc, { type: 'Exact', service: 'shop.Cart', method: 'Get' });
  const consumer = entries[2]!.route;
  t.same(consumer.parents, [{ service: 'shop/cart' }]);
  t.equal(consumer.namespace, 'web');
  t.same(consumer.rules[0]!.backends, [{ service: 'shop/cart', port: 80, weight: 1, filters: [] }], 'a backend in another namespace needs no ReferenceGrant in the mesh (GEP-1294)');

  const status = routeStatuses(s, { ...opts, workloads: cfg.workloads, services: cfg.services });
  const byName = Object.fromEntries(status.map((st) => [st.name, st]));
  t.same(byName.cart!.parents[0]!.conditions.map((c) => [c.type, c.status, c.reason]), [['Accepted', 'True', 'Accepted'], ['ResolvedRefs', 'False', 'BackendNotFound']]);
  t.same(byName.cart!.unresolvedBackends, [
    { field: 'spec.rules[0].backendRefs[2]', service: 'shop/cart-v3', port: 80, reason: 'BackendNotFound' },
  ]);
  t.match(byName.consumer!.parents[0]!.conditions[0]!.message, /consumer route: applies to callers in namespace web only/);
  t.same(byName.grpc!.parents[0]!.conditions.map((c) => c.status), ['True', 'True']);
  s.upsert(route('orphan', { parentRefs: [parent('nope'), parent('cart', { port: 81 })], rules: [] }), 'test');
  const orphan = routeStatuses(s, { ...opts, workloads: cfg.workloads, services: translate(s, opts, 2).services }).find((x) => x.name === 'orphan')!;
  t.same(orphan.parents.map((p) => [p.conditions[0]!.reason, p.conditions[0]!.message]), [['NoMatchingParent', 'Service shop/nope does not exist'], ['NoMatchingParent', 'Service shop/cart has no port 81']]);
});

t.test('the shipped example route is accepted', async (t) => {
  const { readFileSync } = await import('node:fs');
  const { parseAllDocuments } = await import('yaml');
  const s = newStore();
  for (const d of parseAllDocuments(readFileSync(new URL('../../../daemonset/examples/httproute.yaml', import.meta.url), 'utf8'))) s.upsert(d.toJS() as KubeObject, 'test');
  t.equal(s.list('HTTPRoute').length, 1);
});
