// The TrafficPolicy stages of the request pipeline (agent/pipeline/stages.ts, TrafficStages), built once per
// config version from the compiled TrafficPolicy entries. Runtime state — per backend and endpoint load,
// ejections, circuit counters, token buckets — lives in the pipeline's RuntimeState under stable keys
// (backend "<ns>/<svc>:<port>", endpoint "ip:port", bucket "<policy>|<pod>|<entry>"), so it is shared by
// every pod on the node and survives config versions. Services without a policy are balanced with
// LEAST_REQUEST (the default) and nothing else applies to them.
import { randomBytes } from 'node:crypto';

import type { TrafficEntry } from '../../common/policy.js';
import type { CompiledLoadBalancer } from '../../common/policy/traffic.js';
import { RequestContext, type ConnectionContext } from '../pipeline/context.js';
import { RESPONSE_HEADERS_ATTR, type AttemptResult, type Backend, type EndpointRef, type FallbackAction, type FaultAction, type HeaderEdits, type LocalResponse, type StageInput, type TrafficStages } from '../pipeline/stages.js';
import { BackendState } from './backend-state.js';
import { DEFAULT_RTT_MS } from './endpoint-state.js';
import { hashKey, pick, type Rand } from './balancer.js';
import { acquire, upstreamLimits, type SlotKind } from './circuit.js';
import { decideFault } from './fault.js';
import { FALLBACK_HEADER, shouldFallBack, type PrimaryFailure } from './fallback.js';

export { RESPONSE_HEADERS_ATTR };
import { recordOutcome, sweep } from './outlier.js';
import { bucketFor, capacityOf, retryAfterSeconds, TokenBucket } from './rate-limit.js';
import { TrafficTable, type AppliedPolicy } from './table.js';

/** RuntimeState spaces this feature owns. */
export const BACKEND_SPACE = 'traffic.backend';
export const BUCKET_SPACE = 'traffic.bucket';

const DEFAULT_LB: CompiledLoadBalancer = Object.freeze({ kind: 'LEAST_REQUEST' });

export interface TrafficStageOptions {
  rand?: Rand;
  now?: () => number;
}

function isRequest(ctx: RequestContext | ConnectionContext): ctx is RequestContext {
  return ctx instanceof RequestContext;
}

/** The backend key of the Service port a connection addressed, when it addressed one. */
function addressedKey(c: ConnectionContext): string | undefined {
  const m = c.service;
  return m ? `${m.service.namespace}/${m.service.name}:${m.port.port}` : undefined;
}

function slotKind(ctx: RequestContext | ConnectionContext): SlotKind {
  if (!isRequest(ctx)) return 'tcp';
  return ctx.protocol === 'http1' ? 'http1' : 'http2';
}

export function trafficStages(input: StageInput, opts: TrafficStageOptions = {}): TrafficStages {
  const rand = opts.rand ?? Math.random;
  const now = opts.now ?? (() => performance.now());
  const entries = input.config.policies.filter((p): p is TrafficEntry => p.kind === 'TrafficPolicy');
  const table = new TrafficTable(entries, input.config.services);
  const runtime = input.runtime;
  const log = input.log;
  const backendState = (key: string): BackendState => runtime.get(BACKEND_SPACE, key, () => new BackendState(key));

  function policyOf(ctx: RequestContext | ConnectionContext, backend: Backend | undefined): AppliedPolicy | undefined {
    if (backend?.service) return table.forBackend(backend.key);
    const key = addressedKey(isRequest(ctx) ? ctx.connection : ctx);
    return key === undefined ? undefined : table.forBackend(key);
  }

  function stickyKey(ctx: RequestContext | ConnectionContext, lb: CompiledLoadBalancer): string | undefined {
    if (lb.kind === 'LEAST_REQUEST' || lb.kind === 'ROUND_ROBIN' || lb.kind === 'RANDOM') return undefined;
    if (!isRequest(ctx)) return lb.kind === 'HASH_SOURCE_IP' ? ctx.source.ip : undefined;
    const key = hashKey(lb, { header: (n) => ctx.header(n), sourceIp: ctx.source.ip });
    if (key !== undefined || lb.kind !== 'HASH_COOKIE') return key;
    // No cookie yet: mint one (once per request, reused by its retries) and set it on the answer, so the
    // client's next requests hash to the same endpoint (Istio's httpCookie with a ttl).
    let minted = ctx.attr<string>('traffic.cookie');
    if (minted === undefined) {
      minted = randomBytes(12).toString('base64url');
      ctx.setAttr('traffic.cookie', minted);
      const attrs = [`${lb.cookie}=${minted}`, `Path=${lb.path ?? '/'}`, 'HttpOnly'];
      if (lb.ttlMs > 0) attrs.push(`Max-Age=${Math.max(1, Math.round(lb.ttlMs / 1000))}`);
      const edits: HeaderEdits = { add: [['set-cookie', attrs.join('; ')]] };
      ctx.setAttr(RESPONSE_HEADERS_ATTR, edits);
    }
    return minted;
  }

  function rateLimit(ctx: RequestContext | ConnectionContext): LocalResponse | undefined {
    if (!isRequest(ctx) && ctx.protocol !== 'tcp') return undefined; // HTTP is limited per request
    const w = ctx.destination;
    if (!w) return undefined;
    const port = ctx.destinationPort;
    for (const ip of w.ips) {
      const limits = table.rateLimitsFor(ip, port);
      if (!limits) continue;
      const principal = ctx.source.principal;
      for (const { policy } of limits) {
        const rl = policy.traffic.rateLimit!;
        const { index, bucket } = bucketFor(rl, principal);
        const t = now();
        const tb = runtime.get(BUCKET_SPACE, `${policy.name}|${w.uid}|${index}`, () => new TokenBucket(bucket.requestsPerSecond, capacityOf(bucket), t));
        tb.endpoint = `${ip}:${port}`;
        tb.reconfigure(bucket.requestsPerSecond, capacityOf(bucket));
        const wait = tb.take(t);
        if (wait > 0) {
          tb.count(principal ?? 'unknown');
          const s = String(retryAfterSeconds(wait));
          return { status: 429, headers: [['retry-after', s]], body: 'local rate limited', grpcStatus: 8, grpcMessage: 'local rate limited', flag: 'RL', policy: policy.name };
        }
      }
      return undefined;
    }
    return undefined;
  }

  return {
    fault(ctx) {
      const p = policyOf(ctx, undefined);
      const f = p?.traffic.fault;
      if (!f) return undefined;
      const d = decideFault(f, rand);
      if (!d) return undefined;
      const out: FaultAction = {};
      if (d.delayMs > 0) out.delayMs = d.delayMs;
      if (d.abort) {
        const grpc = d.abort.grpcStatus;
        out.abort =
          grpc !== undefined
            ? { status: 200, grpcStatus: grpc, grpcMessage: 'fault filter abort', flag: 'FI', policy: p.name }
            : { status: d.abort.httpStatus!, body: 'fault filter abort', flag: 'FI', policy: p.name };
      }
      return out;
    },

    admit: rateLimit,

    pick(ctx, backend, tried) {
      const eps = backend.endpoints;
      if (eps.length === 0) return undefined;
      const p = backend.service ? table.forBackend(backend.key) : undefined;
      if (!backend.service && eps.length === 1) return tried.includes(eps[0]!.id) ? undefined : eps[0];
      const b = backendState(backend.key);
      const t = now();
      const od = p?.traffic.outlierDetection;
      if (od) sweep(od, b, t);
      if (b.endpoints.size > eps.length * 2 + 8) b.prune(new Set(eps.map((e) => e.id)), t);
      const lb = p?.traffic.loadBalancer ?? DEFAULT_LB;
      return pick<EndpointRef>(lb, eps, b, stickyKey(ctx, lb), tried, rand, t);
    },

    acquire(ctx, backend, endpoint) {
      const p = backend.service ? table.forBackend(backend.key) : undefined;
      const b = backendState(backend.key);
      const retry = isRequest(ctx) && ctx.outcome.attempts > 1;
      const slot = acquire(p?.traffic.connectionPool, b, b.endpoint(endpoint.id), slotKind(ctx), retry, now(), upstreamLimits(p?.traffic));
      return slot ?? undefined;
    },

    feedback(ctx, backend, endpoint, result: AttemptResult, latencyMs) {
      const b = input.runtime.peek<BackendState>(BACKEND_SPACE, backend.key);
      if (!b) return;
      const s = b.endpoint(endpoint.id);
      const t = now();
      // Latency of answers; TCP connections are balanced on outstanding connections.
      if (isRequest(ctx) && result.status > 0 && result.status < 500) s.observe(latencyMs, t);
      if (result.status >= 500 || result.error) {
        s.failures++;
        // A failure is taken as a slow answer (at least twice the current estimate): an endpoint failing fast
        // must not look attractive to least request (Finagle's failure penalty, in spirit).
        if (isRequest(ctx)) s.observe(Math.max(latencyMs, 2 * s.estimate(t), DEFAULT_RTT_MS), t);
      }
      const od = backend.service ? table.forBackend(backend.key)?.traffic.outlierDetection : undefined;
      if (od && recordOutcome(od, b, s, { status: result.status, ...(result.error ? { error: result.error } : {}) }, backend.endpoints.length, t)) {
        log.info('endpoint ejected', { backend: backend.key, endpoint: endpoint.id, forMs: Math.round(s.ejectedUntil - t), ejections: s.ejections });
      }
    },

    fallback(ctx, backend, result) {
      const p = policyOf(ctx, backend);
      const fb = p?.traffic.fallback;
      if (!fb) return undefined;
      const failure: PrimaryFailure = {
        status: result.status,
        ...(result.error ? { error: result.error } : {}),
        noHealthyEndpoint: result.error === 'no_healthy_upstream',
        overloaded: result.error === 'overloaded',
      };
      if (!shouldFallBack(fb, failure)) return undefined;
      const b = backendState(backend?.key ?? addressedKey(ctx.connection) ?? 'unknown');
      const target = fb.target;
      if (target.kind === 'response') {
        b.fallbacks.set('response', (b.fallbacks.get('response') ?? 0) + 1);
        const action: FallbackAction = {
          kind: 'respond',
          name: p.name,
          response: { status: target.status, headers: [...target.headers, [FALLBACK_HEADER, 'response']], body: target.body, policy: p.name },
        };
        return action;
      }
      const fbBackend = input.backends.service(target.service, target.port);
      if (!fbBackend) return undefined;
      b.fallbacks.set(target.service, (b.fallbacks.get(target.service) ?? 0) + 1);
      return { kind: 'backend', backend: fbBackend, name: target.service };
    },
  };
}
