// TrafficPolicy -> CompiledTraffic: durations to milliseconds, Istio's/Envoy's defaults filled in,
// principals to spiffe:// IDs, gRPC status names to codes, the fallback Service resolved. The store already
// refused anything the schema or controller/store/semantics/traffic-policy.ts rejects, so this only
// translates; what it cannot resolve against other objects (a missing fallback Service) it reports in
// `problems` for operators instead of failing the whole config.
import { policyEntryKey, type CompiledPolicy } from '../../../common/policy.js';
import {
  durationMs,
  FALLBACK_CONDITIONS,
  TRAFFIC_DEFAULTS as D,
  type CompiledFallback,
  type CompiledLoadBalancer,
  type CompiledTraffic,
  type FallbackCondition,
} from '../../../common/policy/traffic.js';
import type { KubeObject } from '../../sources/types.js';
import type { PolicyCompileContext } from './compile.js';

export interface TrafficSpec {
  targetRef: { group?: string; kind: 'Service'; name: string; port?: number };
  loadBalancer?: {
    simple?: 'LEAST_REQUEST' | 'ROUND_ROBIN' | 'RANDOM';
    consistentHash?: { httpHeaderName?: string; httpCookie?: { name: string; path?: string; ttl: string }; useSourceIp?: boolean };
  };
  connectionPool?: {
    tcp?: { maxConnections?: number; connectTimeout?: string };
    http?: { http1MaxPendingRequests?: number; http2MaxRequests?: number; maxRequestsPerConnection?: number; maxRetries?: number; idleTimeout?: string };
  };
  outlierDetection?: { consecutive5xxErrors?: number; consecutiveGatewayErrors?: number; interval?: string; baseEjectionTime?: string; maxEjectionPercent?: number };
  rateLimit?: { requestsPerSecond: number; burst?: number; perPrincipal?: { principals: string[]; requestsPerSecond: number; burst?: number }[] };
  fault?: {
    delay?: { fixedDelay: string; percentage?: { value?: number } };
    abort?: { httpStatus?: number; grpcStatus?: string; percentage?: { value?: number } };
  };
  fallback?: {
    backendRef?: { name: string; port: number };
    response?: { status: number; headers?: Record<string, string>; body?: string };
    on?: FallbackCondition[];
  };
  retryBudget?: { percent?: number; minRetriesPerSecond?: number; interval?: string };
  retries?: { attempts?: number; perTryTimeout?: string; retryOn?: string };
  timeouts?: { request?: string; idle?: string };
}

/** gRPC status codes by name (grpc/doc/statuscodes.md), as Istio's abort.grpcStatus names them. */
export const GRPC_STATUS: Readonly<Record<string, number>> = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6, PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14,
  DATA_LOSS: 15, UNAUTHENTICATED: 16,
};

/** "cluster.local/ns/a/sa/b" (Istio's form) or a spiffe:// ID -> the spiffe:// ID. */
export function normalisePrincipal(p: string): string {
  return p.startsWith('spiffe://') ? p : `spiffe://${p}`;
}

const ms = (s: string | undefined, dflt: number): number => (s === undefined ? dflt : durationMs(s));
const opt = <K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } => (v === undefined ? {} : ({ [k]: v } as { [P in K]?: V }));

function loadBalancer(lb: TrafficSpec['loadBalancer']): CompiledLoadBalancer {
  const h = lb?.consistentHash;
  if (h?.httpHeaderName) return { kind: 'HASH_HEADER', header: h.httpHeaderName.toLowerCase() };
  if (h?.httpCookie) return { kind: 'HASH_COOKIE', cookie: h.httpCookie.name, ...opt('path', h.httpCookie.path), ttlMs: durationMs(h.httpCookie.ttl) };
  if (h?.useSourceIp) return { kind: 'HASH_SOURCE_IP' };
  return { kind: lb?.simple ?? 'LEAST_REQUEST' };
}

function fallback(f: NonNullable<TrafficSpec['fallback']>, ns: string, ctx: PolicyCompileContext, problems: string[]): CompiledFallback {
  const on = f.on ? [...new Set(f.on)] : [...FALLBACK_CONDITIONS];
  if (f.backendRef) {
    const { name, port } = f.backendRef;
    const svc = ctx.services.find((s) => s.namespace === ns && s.name === name);
    let resolved = !!svc && svc.ports.some((p) => p.port === port);
    if (!svc) problems.push(`spec.fallback.backendRef: Service ${ns}/${name} does not exist; failures are returned as they are`);
    else if (!resolved) problems.push(`spec.fallback.backendRef.port: Service ${ns}/${name} has no port ${port}; failures are returned as they are`);
    if (!svc?.clusterIPs.length && svc) {
      resolved = false;
      problems.push(`spec.fallback.backendRef: Service ${ns}/${name} has no cluster IP; failures are returned as they are`);
    }
    return { target: { kind: 'service', service: `${ns}/${name}`, port, resolved }, on };
  }
  const r = f.response!;
  return { target: { kind: 'response', status: r.status, headers: Object.entries(r.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]), body: r.body ?? '' }, on };
}

export function compileTrafficSpec(spec: TrafficSpec, ns: string, createdMs: number, ctx: PolicyCompileContext): CompiledTraffic {
  const problems: string[] = [];
  const cp = spec.connectionPool;
  const od = spec.outlierDetection;
  const rl = spec.rateLimit;
  const fault = spec.fault;
  const out: CompiledTraffic = {
    service: `${ns}/${spec.targetRef.name}`,
    ...opt('port', spec.targetRef.port),
    createdMs,
    loadBalancer: loadBalancer(spec.loadBalancer),
    problems,
  };
  if (cp) {
    out.connectionPool = {
      ...opt('maxConnections', cp.tcp?.maxConnections),
      ...(cp.tcp?.connectTimeout !== undefined ? { connectTimeoutMs: ms(cp.tcp.connectTimeout, 0) } : {}),
      ...opt('http1MaxPendingRequests', cp.http?.http1MaxPendingRequests),
      ...opt('http2MaxRequests', cp.http?.http2MaxRequests),
      ...(cp.http?.maxRequestsPerConnection ? { maxRequestsPerConnection: cp.http.maxRequestsPerConnection } : {}),
      ...opt('maxRetries', cp.http?.maxRetries),
      ...(cp.http?.idleTimeout !== undefined ? { idleTimeoutMs: ms(cp.http.idleTimeout, 0) } : {}),
    };
  }
  if (od) {
    out.outlierDetection = {
      consecutive5xxErrors: od.consecutive5xxErrors ?? D.consecutive5xxErrors,
      consecutiveGatewayErrors: od.consecutiveGatewayErrors ?? D.consecutiveGatewayErrors,
      intervalMs: ms(od.interval, D.intervalMs),
      baseEjectionTimeMs: ms(od.baseEjectionTime, D.baseEjectionTimeMs),
      maxEjectionPercent: od.maxEjectionPercent ?? D.maxEjectionPercent,
      maxEjectionTimeMs: D.maxEjectionTimeMs,
    };
  }
  if (rl) {
    out.rateLimit = {
      requestsPerSecond: rl.requestsPerSecond,
      burst: rl.burst ?? 0,
      perPrincipal: (rl.perPrincipal ?? []).map((p) => ({ principals: p.principals.map(normalisePrincipal), requestsPerSecond: p.requestsPerSecond, burst: p.burst ?? 0 })),
    };
  }
  if (fault) {
    out.fault = {
      ...(fault.delay ? { delay: { delayMs: durationMs(fault.delay.fixedDelay), percent: fault.delay.percentage?.value ?? 0 } } : {}),
      ...(fault.abort
        ? { abort: { ...opt('httpStatus', fault.abort.httpStatus), ...opt('grpcStatus', fault.abort.grpcStatus === undefined ? undefined : GRPC_STATUS[fault.abort.grpcStatus]), percent: fault.abort.percentage?.value ?? 0 } }
        : {}),
    };
  }
  if (spec.fallback) out.fallback = fallback(spec.fallback, ns, ctx, problems);
  if (spec.retryBudget) {
    out.retryBudget = {
      percent: spec.retryBudget.percent ?? D.retryBudgetPercent,
      minRetriesPerSecond: spec.retryBudget.minRetriesPerSecond ?? D.retryBudgetMinPerSecond,
      intervalMs: ms(spec.retryBudget.interval, D.retryBudgetIntervalMs),
    };
  }
  if (spec.retries) {
    out.retries = {
      attempts: spec.retries.attempts ?? 2,
      ...opt('perTryTimeoutMs', spec.retries.perTryTimeout === undefined ? undefined : durationMs(spec.retries.perTryTimeout)),
      retryOn: spec.retries.retryOn ? spec.retries.retryOn.split(',') : ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', '503'],
    };
  }
  if (spec.timeouts) {
    out.timeouts = {
      ...opt('requestMs', spec.timeouts.request === undefined ? undefined : durationMs(spec.timeouts.request)),
      ...opt('idleMs', spec.timeouts.idle === undefined ? undefined : durationMs(spec.timeouts.idle)),
    };
  }
  return out;
}

export function compileTrafficPolicy(o: KubeObject, ctx: PolicyCompileContext): CompiledPolicy[] {
  const ns = o.metadata.namespace!;
  const created = Date.parse(String(o.metadata.creationTimestamp ?? ''));
  return [
    {
      kind: 'TrafficPolicy',
      key: policyEntryKey('TrafficPolicy', ns, o.metadata.name),
      namespace: ns,
      name: o.metadata.name,
      traffic: compileTrafficSpec(o.spec as TrafficSpec, ns, Number.isFinite(created) ? created : 0, ctx),
    },
  ];
}
