// The TrafficPolicy stages against the pipeline's stage API, on a config in memory: the default balancer,
// consistent hashing across a config version, outlier feedback → ejection → skipped, circuit slots, the
// destination-side rate limit (429 + retry-after, gRPC 8, counted per caller), fault, fallback and the
// admin status. The sandbox tests (test/e2e/traffic*.test.ts) prove the same end to end.
import t from 'tap';

import { silentLogger } from '../../common/log.js';
import type { MeshConfig, Service, Workload } from '../../common/mesh.js';
import type { TrafficEntry } from '../../common/policy.js';
import type { CompiledTraffic } from '../../common/policy/traffic.js';
import { VersionBackends } from '../../agent/pipeline/backends.js';
import { newConnectionContext, RequestContext, sourceFromPeer, sourceFromWorkload, type ConnectionContext } from '../../agent/pipeline/context.js';
import { RuntimeState } from '../../agent/pipeline/runtime.js';
import type { Permit, StageInput, TrafficStages } from '../../agent/pipeline/stages.js';
import { MeshState } from '../../agent/state/mesh-state.js';
import { RESPONSE_HEADERS_ATTR, trafficStages } from '../../agent/traffic/stages.js';
import { trafficStatus } from '../../agent/traffic/status.js';
import { seeded } from './seeded.js';

const wl = (name: string, ip: string, node = 'node-1'): Workload => ({ uid: `uid-${name}`, namespace: 'shop', name, serviceAccount: name, node, ips: [ip], labels: {}, meshed: true, hostNetwork: false, mtlsMode: 'PERMISSIVE', workloadName: name });
const pods = [wl('cart-0', '10.98.1.10'), wl('cart-1', '10.98.1.11'), wl('cart-2', '10.98.2.12', 'node-2'), wl('client', '10.98.1.50'), wl('generic-0', '10.98.1.60')];
const svc = (name: string, ips: string[], vip: string): Service => ({ namespace: 'shop', name, clusterIPs: [vip], ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }], endpoints: ips.map((ip) => ({ ip, node: pods.find((p) => p.ips[0] === ip)!.node, workloadUid: pods.find((p) => p.ips[0] === ip)!.uid, ready: true })) });
const cart = svc('cart', ['10.98.1.10', '10.98.1.11', '10.98.2.12'], '10.97.0.10');
const generic = svc('generic', ['10.98.1.60'], '10.97.0.60');
const entry = (tr: Partial<CompiledTraffic>, name = 'cart'): TrafficEntry => ({ kind: 'TrafficPolicy', key: `TrafficPolicy/shop/${name}`, namespace: 'shop', name, traffic: { service: 'shop/cart', createdMs: 0, loadBalancer: { kind: 'LEAST_REQUEST' }, problems: [], ...tr } });
const config = (version: number, policies: TrafficEntry[], services = [cart, generic]): MeshConfig => ({ version, trustDomain: 'cluster.local', nodes: [{ name: 'node-1', ip: '10.99.0.1' }, { name: 'node-2', ip: '10.99.0.2' }], workloads: pods, services, policies });

function setup(cfg: MeshConfig, runtime = new RuntimeState(), rand = seeded(7)): { stages: TrafficStages; input: StageInput; state: MeshState } {
  const state = new MeshState('node-1');
  state.update(cfg);
  const input: StageInput = { config: cfg, state, backends: new VersionBackends(state), runtime, log: silentLogger };
  return { stages: trafficStages(input, { rand }), input, state };
}

const conn = (state: MeshState, protocol: 'http1' | 'http2' | 'tcp' = 'http1'): ConnectionContext =>
  newConnectionContext({ side: 'source', protocol, source: sourceFromWorkload(pods[3], 'spiffe://cluster.local/ns/shop/sa/client', '10.98.1.50'), original: { ip: '10.97.0.10', port: 80 }, service: state.serviceByVip('10.97.0.10', 80), destination: undefined, destinationPort: 0 });
const req = (c: ConnectionContext, headers: string[] = [], protocol: 'http1' | 'http2' | 'grpc' = 'http1') => new RequestContext(c, protocol, 'GET', '/', 'cart', 'http', headers);

t.test('no policy: LEAST_REQUEST over the ready endpoints; no limits, fault or fallback', async (t) => {
  const { stages, input, state } = setup(config(1, []));
  const b = input.backends.service('shop/cart', 80)!;
  const seen = new Map<string, number>();
  const held = [];
  // 60 requests in flight at once: least request spreads them (outstanding counts in the cost)
  for (let i = 0; i < 60; i++) {
    const r = req(conn(state));
    const ep = stages.pick(r, b, [])!;
    seen.set(ep.id, (seen.get(ep.id) ?? 0) + 1);
    held.push(stages.acquire(r, b, ep) as Permit);
  }
  t.equal(seen.size, 3, 'all three endpoints used');
  for (const n of seen.values()) t.ok(n >= 15 && n <= 25, `share ${n}/60`);
  for (const p of held) p.release();
  t.equal(stages.fault(req(conn(state))), undefined);
  t.equal(stages.fallback(req(conn(state)), b, { status: 503, sent: true }), undefined);
});

t.test('consistent hash on a header: one endpoint per value, across a config version', async (t) => {
  const runtime = new RuntimeState();
  const pol = [entry({ loadBalancer: { kind: 'HASH_HEADER', header: 'x-user' } })];
  const v1 = setup(config(1, pol), runtime);
  const owners = new Map<string, string>();
  for (const user of ['ann', 'bob', 'cy', 'dee', 'eve', 'fay']) {
    const b = v1.input.backends.service('shop/cart', 80)!;
    const ids = new Set(Array.from({ length: 100 }, () => v1.stages.pick(req(conn(v1.state), ['X-User', user]), b, [])!.id));
    t.equal(ids.size, 1, `${user}: one endpoint over 100 requests`);
    owners.set(user, [...ids][0]!);
  }
  t.ok(new Set(owners.values()).size > 1, 'values spread over endpoints');
  // a new version with the endpoints listed in another order
  const v2 = setup(config(2, pol, [{ ...cart, endpoints: [...cart.endpoints].reverse() }, generic]), runtime);
  for (const [user, owner] of owners) t.equal(v2.stages.pick(req(conn(v2.state), ['x-user', user]), v2.input.backends.service('shop/cart', 80)!, [])!.id, owner, `${user}: same endpoint after the new version`);
});

t.test('cookie hash: mints a cookie, sets it on the answer, and the cookie then sticks', async (t) => {
  const { stages, input, state } = setup(config(1, [entry({ loadBalancer: { kind: 'HASH_COOKIE', cookie: 'sticky', ttlMs: 3_600_000 } })]));
  const b = input.backends.service('shop/cart', 80)!;
  const r = req(conn(state));
  const ep = stages.pick(r, b, [])!;
  const edits = r.attr<{ add: [string, string][] }>(RESPONSE_HEADERS_ATTR)!;
  t.match(edits.add[0], ['set-cookie', /^sticky=[A-Za-z0-9_-]+; Path=\/; HttpOnly; Max-Age=3600$/]);
  const value = /sticky=([^;]+)/.exec(edits.add[0]![1])![1]!;
  for (let i = 0; i < 20; i++) t.equal(stages.pick(req(conn(state), ['Cookie', `sticky=${value}`]), b, [])!.id, ep.id);
});

t.test('outlier feedback ejects an endpoint; it is skipped; all ejected → none (then fallback)', async (t) => {
  const runtime = new RuntimeState();
  let now = 1000;
  const cfg = config(1, [entry({ outlierDetection: { consecutive5xxErrors: 3, consecutiveGatewayErrors: 0, intervalMs: 1000, baseEjectionTimeMs: 5000, maxEjectionPercent: 100, maxEjectionTimeMs: 300_000 }, fallback: { target: { kind: 'response', status: 200, headers: [['content-type', 'text/plain']], body: 'generic' }, on: ['no-healthy-endpoint', '5xx'] } })]);
  const state = new MeshState('node-1');
  state.update(cfg);
  const input: StageInput = { config: cfg, state, backends: new VersionBackends(state), runtime, log: silentLogger };
  const stages = trafficStages(input, { rand: seeded(3), now: () => now });
  const b = input.backends.service('shop/cart', 80)!;
  const bad = b.endpoints[0]!;
  stages.pick(req(conn(state)), b, []);
  for (let i = 0; i < 3; i++) stages.feedback(req(conn(state)), b, bad, { status: 500, sent: true }, 1);
  for (let i = 0; i < 50; i++) t.not(stages.pick(req(conn(state)), b, [])!.id, bad.id);
  const st = trafficStatus(runtime, cfg, now, 0);
  const e = st.backends[0]!.endpoints.find((x) => x.id === bad.id)!;
  t.match(e, { ejected: true, ejectedUntil: new Date(5000).toISOString(), ejections: 1 });
  for (const ep of b.endpoints.slice(1)) for (let i = 0; i < 3; i++) stages.feedback(req(conn(state)), b, ep, { status: 0, error: 'connect_failed', sent: false }, 1);
  t.equal(stages.pick(req(conn(state)), b, []), undefined, 'every endpoint ejected: nothing to pick');
  const fb = stages.fallback(req(conn(state)), b, { status: 0, error: 'no_healthy_upstream', sent: false });
  t.same(fb, { kind: 'respond', name: 'shop/cart', response: { status: 200, headers: [['content-type', 'text/plain'], ['x-weft-fallback', 'response']], body: 'generic', policy: 'shop/cart' } });
  now = 7000;
  t.ok(stages.pick(req(conn(state)), b, []), 'back after the ejection time, at a sweep');
  t.same(trafficStatus(runtime, cfg, now, 0).backends[0]!.fallbacks, { response: 1 });
});

t.test('fallback to a Service; not for conditions it is not listed for', async (t) => {
  const { stages, input, state } = setup(config(1, [entry({ fallback: { target: { kind: 'service', service: 'shop/generic', port: 80, resolved: true }, on: ['5xx', 'timeout'] } })]));
  const b = input.backends.service('shop/cart', 80)!;
  const fb = stages.fallback(req(conn(state)), b, { status: 503, sent: true });
  t.match(fb, { kind: 'backend', name: 'shop/generic', backend: { key: 'shop/generic:80' } });
  t.equal(stages.fallback(req(conn(state)), b, { status: 0, error: 'overloaded', sent: false }), undefined);
  t.ok(stages.fallback(req(conn(state)), b, { status: 0, error: 'timeout', sent: false }));
});

t.test('circuit: maxConnections 1 for TCP and HTTP/1.1', async (t) => {
  const { stages, input, state } = setup(config(1, [entry({ connectionPool: { maxConnections: 1 } })]));
  const b = input.backends.service('shop/cart', 80)!;
  const c = conn(state, 'tcp');
  const p1 = stages.acquire(c, b, b.endpoints[0]!);
  t.ok(p1);
  t.equal(stages.acquire(conn(state, 'tcp'), b, b.endpoints[1]!), undefined, 'a second connection to the service is refused');
  (p1 as Permit).release();
  const permits = Array.from({ length: 20 }, () => stages.acquire(req(conn(state)), b, b.endpoints[0]!));
  t.equal(permits.filter(Boolean).length, 1);
  t.equal(trafficStatus(input.runtime, input.config).backends[0]!.circuit.overloaded, 20);
});

t.test('rate limit at the destination: shared bucket per pod, 429 + retry-after, gRPC 8, per principal', async (t) => {
  let now = 0;
  const cfg = config(1, [entry({ rateLimit: { requestsPerSecond: 2, burst: 3, perPrincipal: [{ principals: ['spiffe://cluster.local/ns/shop/sa/vip'], requestsPerSecond: 100, burst: 100 }] } })]);
  const state = new MeshState('node-1');
  state.update(cfg);
  const runtime = new RuntimeState();
  const stages = trafficStages({ config: cfg, state, backends: new VersionBackends(state), runtime, log: silentLogger }, { now: () => now });
  const dest = (principal: string, protocol: 'http1' | 'grpc' = 'http1') => {
    const c = newConnectionContext({ side: 'destination', protocol: protocol === 'grpc' ? 'http2' : 'http1', source: sourceFromPeer(principal, '10.99.0.2'), original: { ip: '10.98.1.10', port: 8080 }, service: undefined, destination: pods[0], destinationPort: 8080 });
    return new RequestContext(c, protocol, 'GET', '/', 'cart', 'http', []);
  };
  const a = 'spiffe://cluster.local/ns/shop/sa/a';
  const b = 'spiffe://cluster.local/ns/other/sa/b';
  const results = [a, b, a, b, a, b].map((p) => stages.admit(dest(p)));
  t.equal(results.filter((r) => r === undefined).length, 3, 'burst of 3 shared by both callers');
  t.match(results[3], { status: 429, headers: [['retry-after', '1']], grpcStatus: 8, flag: 'RL', policy: 'shop/cart' });
  now = 500;
  t.equal(stages.admit(dest(a)), undefined, 'one more token after 500 ms at 2/s');
  t.ok(stages.admit(dest(a)));
  for (let i = 0; i < 50; i++) t.equal(stages.admit(dest('spiffe://cluster.local/ns/shop/sa/vip')), undefined, 'a perPrincipal caller has its own bucket');
  t.equal(stages.admit({ ...dest(a).connection, destination: pods[1], destinationPort: 9999 } as ConnectionContext), undefined, 'other ports: no limit');
  const st = trafficStatus(runtime, cfg);
  const def = st.rateLimits.find((r) => r.entry === -1)!;
  t.same(def.rejected, { [a]: 2, [b]: 2 }, 'rejections counted per caller');
});

t.test('fault: abort and delay at their percentages; gRPC abort status', async (t) => {
  const { stages, state } = setup(config(1, [entry({ fault: { delay: { delayMs: 300, percent: 10 }, abort: { httpStatus: 503, percent: 5 } } })]), new RuntimeState(), seeded(21));
  let d = 0;
  let a = 0;
  for (let i = 0; i < 10_000; i++) {
    const f = stages.fault(req(conn(state)));
    if (f?.delayMs) d++;
    if (f?.abort) {
      a++;
      t.equal(f.abort.status, 503);
    }
  }
  t.ok(Math.abs(d - 1000) < 100, `delayed ${d}`);
  t.ok(Math.abs(a - 500) < 70, `aborted ${a}`);
  const g = setup(config(1, [entry({ fault: { abort: { grpcStatus: 14, percent: 100 } } })]));
  t.match(g.stages.fault(req(conn(g.state), [], 'grpc')), { abort: { status: 200, grpcStatus: 14, flag: 'FI' } });
});
