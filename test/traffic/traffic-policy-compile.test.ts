// TrafficPolicy on the controller side: the built-in schema is the CRD's, the semantic checks refuse what
// a structural schema cannot say (naming object and field), and the compiler fills Istio's/Envoy's
// defaults, converts durations and resolves the fallback Service.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

import { silentLogger } from '../../common/log.js';
import { durationMs, TRAFFIC_DEFAULTS } from '../../common/policy/traffic.js';
import type { Service } from '../../common/mesh.js';
import type { KubeObject } from '../../controller/sources/types.js';
import { CRD_DIR } from '../../controller/store/crd-schemas.js';
import { BUILTIN_KINDS, KindRegistry } from '../../controller/store/kinds.js';
import { ObjectStore } from '../../controller/store/object-store.js';
import { checkTrafficPolicy, NOT_YET_ENFORCED } from '../../controller/store/semantics/traffic-policy.js';
import { compileTrafficSpec, type TrafficSpec } from '../../controller/translate/policy/traffic.js';

const tp = (spec: Record<string, unknown>): KubeObject => ({ apiVersion: 'weft.io/v1alpha1', kind: 'TrafficPolicy', metadata: { name: 'p', namespace: 'shop' }, spec: { targetRef: { kind: 'Service', name: 'cart' }, ...spec } }) as KubeObject;
const svc = (name: string, port = 80): Service => ({ namespace: 'shop', name, clusterIPs: ['10.97.0.9'], ports: [{ port, targetPort: 8080, protocol: 'TCP' }], endpoints: [] });
const ctx = { trustDomain: 'cluster.local', rootNamespace: 'weft-system', workloads: [], services: [svc('cart'), svc('generic', 8080)] };

t.test('the built-in TrafficPolicy schema is the CRD manifest', async (t) => {
  const crd = parse(readFileSync(`${CRD_DIR}/trafficpolicy.yaml`, 'utf8'));
  const builtin = BUILTIN_KINDS.find((k) => k.kind === 'TrafficPolicy')!.schema;
  t.same((builtin.properties as Record<string, unknown>).spec, crd.spec.versions[0].schema.openAPIV3Schema.properties.spec, 'spec schema identical');
  const store = new ObjectStore(new KindRegistry(BUILTIN_KINDS), silentLogger);
  t.throws(() => store.validate(tp({ loadBalancer: { algorithm: 'RANDOM' } })), { code: 'WEFT_ERR_CONFIG', message: /TrafficPolicy shop\/p, field spec\.loadBalancer\.algorithm: is not a known field/ });
  t.throws(() => store.validate(tp({ timeout: '3s' })), { message: /field spec\.timeout: is not a known field/ });
  t.doesNotThrow(() => store.validate(tp({})));
  t.doesNotThrow(() => store.validate(tp({ retries: { attempts: 2, retryOn: 'unavailable,internal' } })), 'gRPC internal is a retry condition (Envoy\'s retry-grpc-on), as the router applies it');
});

t.test('semantic checks name the object and field', async (t) => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ loadBalancer: { simple: 'RANDOM', consistentHash: { useSourceIp: true } } }, /field spec\.loadBalancer\.consistentHash: set either simple or consistentHash/],
    [{ loadBalancer: { consistentHash: { httpHeaderName: 'x-user', useSourceIp: true } } }, /field spec\.loadBalancer\.consistentHash: set exactly one of .* \(got httpHeaderName, useSourceIp\)/],
    [{ loadBalancer: { consistentHash: { useSourceIp: false } } }, /field spec\.loadBalancer\.consistentHash\.useSourceIp: must be true/],
    [{ loadBalancer: {} }, /field spec\.loadBalancer: set simple or consistentHash/],
    [{ outlierDetection: { baseEjectionTime: '0s' } }, /field spec\.outlierDetection\.baseEjectionTime: must be longer than 0/],
    [{ outlierDetection: { consecutive5xxErrors: 0 } }, /field spec\.outlierDetection: .*nothing would ever be ejected/],
    [{ fault: {} }, /field spec\.fault: set delay, abort or both/],
    [{ fault: { abort: { httpStatus: 503, grpcStatus: 'UNAVAILABLE' } } }, /field spec\.fault\.abort: set exactly one of httpStatus or grpcStatus/],
    [{ fallback: { on: ['5xx'] } }, /field spec\.fallback: set exactly one of backendRef or response/],
    [{ fallback: { backendRef: { name: 'cart', port: 80 } } }, /field spec\.fallback\.backendRef\.name: is the policy's own Service/],
    [{ fallback: { response: { status: 200, headers: { 'Content-Length': '5' } } } }, /field spec\.fallback\.response\.headers\.Content-Length: is set by the proxy/],
    [{ fallback: { response: { status: 200, headers: { 'bad header': 'x' } } } }, /field spec\.fallback\.response\.headers\.bad header: is not a valid header name/],
    [{ rateLimit: { requestsPerSecond: 5, perPrincipal: [{ principals: ['shop/sa/x'], requestsPerSecond: 1 }] } }, /field spec\.rateLimit\.perPrincipal\[0\]\.principals\[0\]: must be a SPIFFE identity/],
    [{ rateLimit: { requestsPerSecond: 5, perPrincipal: [{ principals: ['cluster.local/ns/a/sa/b'], requestsPerSecond: 1 }, { principals: ['spiffe://cluster.local/ns/a/sa/b'], requestsPerSecond: 2 }] } }, /field spec\.rateLimit\.perPrincipal\[1\]\.principals\[0\]: .* is listed twice/],
  ];
  for (const [spec, re] of cases) t.throws(() => checkTrafficPolicy(tp(spec), 'TrafficPolicy shop/p'), { code: 'WEFT_ERR_CONFIG', message: re }, re.source);
  // what the data path applies is accepted
  t.doesNotThrow(() =>
    checkTrafficPolicy(
      tp({
        loadBalancer: { consistentHash: { httpCookie: { name: 'sticky', ttl: '1h' } } },
        connectionPool: { tcp: { maxConnections: 10 }, http: { http2MaxRequests: 100, maxRetries: 3 } },
        outlierDetection: { consecutiveGatewayErrors: 3 },
        rateLimit: { requestsPerSecond: 10, burst: 5, perPrincipal: [{ principals: ['cluster.local/ns/a/sa/b'], requestsPerSecond: 1 }] },
        fault: { abort: { grpcStatus: 'UNAVAILABLE', percentage: { value: 1 } } },
        fallback: { backendRef: { name: 'generic', port: 80 }, on: ['5xx', 'no-healthy-endpoint'] },
      }),
      'TrafficPolicy shop/p',
    ),
  );
});

t.test('http1MaxPendingRequests is applied: accepted with maxConnections, compiled; refused without it', async (t) => {
  t.notOk('connectionPool.http.http1MaxPendingRequests' in NOT_YET_ENFORCED, 'no longer in the refused list');
  const spec = { connectionPool: { tcp: { maxConnections: 2 }, http: { http1MaxPendingRequests: 5 } } };
  t.doesNotThrow(() => checkTrafficPolicy(tp(spec), 'TrafficPolicy shop/p'));
  const store = new ObjectStore(new KindRegistry(BUILTIN_KINDS), silentLogger);
  t.doesNotThrow(() => store.validate(tp(spec)), 'the built-in schema (the CRD) takes it');
  t.throws(() => store.validate(tp({ connectionPool: { tcp: { maxConnections: 2 }, http: { http1MaxPendingRequests: 0 } } })), { code: 'WEFT_ERR_CONFIG', message: /field spec\.connectionPool\.http\.http1MaxPendingRequests/ }, 'at least 1 (the CRD minimum)');
  t.same(compileTrafficSpec({ targetRef: { kind: 'Service', name: 'cart' }, ...spec }, 'shop', 0, ctx).connectionPool, { maxConnections: 2, http1MaxPendingRequests: 5 });
  t.throws(() => checkTrafficPolicy(tp({ connectionPool: { http: { http1MaxPendingRequests: 5 } } }), 'TrafficPolicy shop/p'), {
    code: 'WEFT_ERR_CONFIG',
    message: /TrafficPolicy shop\/p, field spec\.connectionPool\.http\.http1MaxPendingRequests: has no effect without connectionPool\.tcp\.maxConnections/,
  });
});

t.test('timeouts.idle is applied: accepted, compiled; 0 refused', async (t) => {
  t.notOk('timeouts.idle' in NOT_YET_ENFORCED, 'no longer in the refused list');
  t.same(Object.keys(NOT_YET_ENFORCED), [], 'every field of the CRD is applied');
  t.doesNotThrow(() => checkTrafficPolicy(tp({ timeouts: { idle: '30s' } }), 'TrafficPolicy shop/p'));
  t.same(compileTrafficSpec({ targetRef: { kind: 'Service', name: 'cart' }, timeouts: { request: '5s', idle: '30s' } }, 'shop', 0, ctx).timeouts, { requestMs: 5000, idleMs: 30_000 });
  t.throws(() => checkTrafficPolicy(tp({ timeouts: { idle: '0s' } }), 'TrafficPolicy shop/p'), { code: 'WEFT_ERR_CONFIG', message: /TrafficPolicy shop\/p, field spec\.timeouts\.idle: must be longer than 0/ });
});

t.test('every field not applied yet is refused, naming it', async (t) => {
  for (const path of Object.keys(NOT_YET_ENFORCED)) {
    const spec: Record<string, unknown> = {};
    let o = spec;
    const keys = path.split('.');
    keys.slice(0, -1).forEach((k) => (o = (o[k] = {}) as Record<string, unknown>));
    // a value that passes the other checks: what matters is that the field is present
    const leaf = keys.at(-1)!;
    o[leaf] = { retryBudget: {}, retries: {}, timeouts: {}, connectTimeout: '1s', idleTimeout: '1s', idle: '1s' }[leaf] ?? 1;
    t.throws(() => checkTrafficPolicy(tp(spec), 'TrafficPolicy shop/p'), { message: new RegExp(`field spec\\.${path.replace(/\./g, '\\.')}: is not applied by this version`) }, path);
  }
});

t.test('compile: defaults, durations, principals, gRPC names, fallback resolution', async (t) => {
  t.equal(durationMs('1h30m'), 5_400_000);
  t.equal(durationMs('250ms'), 250);
  t.equal(durationMs('1m5s100ms'), 65_100);
  t.ok(Number.isNaN(durationMs('3 seconds')));

  const bare = compileTrafficSpec({ targetRef: { kind: 'Service', name: 'cart' } }, 'shop', 7, ctx);
  t.same(bare, { service: 'shop/cart', createdMs: 7, loadBalancer: { kind: 'LEAST_REQUEST' }, problems: [] }, 'LEAST_REQUEST by default, nothing else');

  const full: TrafficSpec = {
    targetRef: { kind: 'Service', name: 'cart', port: 80 },
    loadBalancer: { consistentHash: { httpCookie: { name: 'sticky', ttl: '1h' } } },
    connectionPool: { tcp: { maxConnections: 1 }, http: { http2MaxRequests: 10 } },
    outlierDetection: { consecutiveGatewayErrors: 2 },
    rateLimit: { requestsPerSecond: 10, perPrincipal: [{ principals: ['cluster.local/ns/a/sa/b'], requestsPerSecond: 1, burst: 2 }] },
    fault: { delay: { fixedDelay: '300ms', percentage: { value: 10 } }, abort: { grpcStatus: 'UNAVAILABLE' } },
    fallback: { backendRef: { name: 'generic', port: 8080 }, on: ['5xx', 'timeout'] },
    retryBudget: { percent: 10 },
  };
  const c = compileTrafficSpec(full, 'shop', 0, ctx);
  t.same(c.port, 80);
  t.same(c.loadBalancer, { kind: 'HASH_COOKIE', cookie: 'sticky', ttlMs: 3_600_000 });
  t.same(c.connectionPool, { maxConnections: 1, http2MaxRequests: 10 }, 'connection settings left unset: the proxy\'s own apply');
  const pooled = compileTrafficSpec({ ...full, connectionPool: { tcp: { connectTimeout: '250ms' }, http: { maxRequestsPerConnection: 3, idleTimeout: '2s' } } }, 'shop', 0, ctx);
  t.same(pooled.connectionPool, { connectTimeoutMs: 250, maxRequestsPerConnection: 3, idleTimeoutMs: 2000 });
  t.same(c.outlierDetection, { consecutive5xxErrors: 5, consecutiveGatewayErrors: 2, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10, maxEjectionTimeMs: 300_000 });
  t.same(c.rateLimit, { requestsPerSecond: 10, burst: 0, perPrincipal: [{ principals: ['spiffe://cluster.local/ns/a/sa/b'], requestsPerSecond: 1, burst: 2 }] });
  t.same(c.fault, { delay: { delayMs: 300, percent: 10 }, abort: { grpcStatus: 14, percent: 0 } }, 'no percentage: never (Istio)');
  t.same(c.fallback, { target: { kind: 'service', service: 'shop/generic', port: 8080, resolved: true }, on: ['5xx', 'timeout'] });
  t.same(c.retryBudget, { percent: 10, minRetriesPerSecond: TRAFFIC_DEFAULTS.retryBudgetMinPerSecond, intervalMs: 10_000 });
  t.same(c.problems, []);

  const missing = compileTrafficSpec({ ...full, fallback: { backendRef: { name: 'nope', port: 80 } } }, 'shop', 0, ctx);
  t.same(missing.fallback, { target: { kind: 'service', service: 'shop/nope', port: 80, resolved: false }, on: ['5xx', 'gateway-error', 'connect-failure', 'timeout', 'overloaded', 'no-healthy-endpoint'] });
  t.match(missing.problems, [/spec\.fallback\.backendRef: Service shop\/nope does not exist/]);
  const badPort = compileTrafficSpec({ ...full, fallback: { backendRef: { name: 'generic', port: 81 } } }, 'shop', 0, ctx);
  t.match(badPort.problems, [/Service shop\/generic has no port 81/]);

  const resp = compileTrafficSpec({ targetRef: { kind: 'Service', name: 'cart' }, fallback: { response: { status: 200, headers: { 'Content-Type': 'application/json' }, body: '[]' } } }, 'shop', 0, ctx);
  t.same(resp.fallback!.target, { kind: 'response', status: 200, headers: [['content-type', 'application/json']], body: '[]' });
});
