// TrafficPolicy checks the structural schema (daemonset/crds/trafficpolicy.yaml) cannot express: "exactly
// one of" choices, values that must not be zero, a fallback that would loop back to its own Service, header
// names of a fixed fallback response, principals — and, above all, every field the data path does not
// enforce yet, so nothing is accepted and then ignored. NOT_YET_ENFORCED shrinks as features land.
import { WeftConfigError } from '../../../common/errors.js';
import { durationMs } from '../../../common/policy/traffic.js';
import type { TrafficSpec } from '../../translate/policy/traffic.js';
import type { KubeObject } from '../../sources/types.js';

/**
 * Field paths (dotted, under spec) accepted by the schema but not applied by this version's data path,
 * each with who applies it when it lands. A policy setting one is refused, naming the field.
 */
export const NOT_YET_ENFORCED: Readonly<Record<string, string>> = {
  // empty: every field of the schema is applied (the router, issue 12, applies retries, retryBudget,
  // timeouts.request and timeouts.idle; issue 13 the rest). A field added to the CRD before the data path
  // applies it goes here.
};

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'content-length']);
const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const PRINCIPAL = /^(spiffe:\/\/)?[^/\s]+\/ns\/[^/\s]+\/sa\/[^/\s]+$/;

function get(spec: unknown, path: string): unknown {
  let v: unknown = spec;
  for (const k of path.split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

export function checkTrafficPolicy(obj: KubeObject, where: string): void {
  const spec = obj.spec as TrafficSpec;
  const refuse = (field: string, why: string): never => {
    throw new WeftConfigError(`${where}, field spec.${field}`, why);
  };

  const lb = spec.loadBalancer;
  if (lb) {
    if (lb.simple !== undefined && lb.consistentHash !== undefined) refuse('loadBalancer.consistentHash', 'set either simple or consistentHash, not both');
    if (lb.simple === undefined && lb.consistentHash === undefined) refuse('loadBalancer', 'set simple or consistentHash (or omit loadBalancer for LEAST_REQUEST)');
    const h = lb.consistentHash;
    if (h) {
      const set = (['httpHeaderName', 'httpCookie', 'useSourceIp'] as const).filter((k) => h[k] !== undefined);
      if (set.length !== 1) refuse('loadBalancer.consistentHash', `set exactly one of httpHeaderName, httpCookie, useSourceIp (got ${set.length ? set.join(', ') : 'none'})`);
      if (h.useSourceIp === false) refuse('loadBalancer.consistentHash.useSourceIp', 'must be true (omit consistentHash to balance otherwise)');
    }
  }

  const positive = (field: string, d: string | undefined) => {
    if (d !== undefined && !(durationMs(d) > 0)) refuse(field, `must be longer than 0 (got ${JSON.stringify(d)})`);
  };
  positive('connectionPool.tcp.connectTimeout', spec.connectionPool?.tcp?.connectTimeout);
  positive('connectionPool.http.idleTimeout', spec.connectionPool?.http?.idleTimeout);
  positive('outlierDetection.interval', spec.outlierDetection?.interval);
  positive('outlierDetection.baseEjectionTime', spec.outlierDetection?.baseEjectionTime);
  positive('retryBudget.interval', spec.retryBudget?.interval);
  // 0 would read as "no idle timeout" (Envoy) while the proxy's own still applies: omit the field for that.
  positive('timeouts.idle', spec.timeouts?.idle);
  // Requests wait for a connection only when maxConnections is reached: without that limit nothing would
  // ever queue, and the field would be accepted and ignored.
  if (spec.connectionPool?.http?.http1MaxPendingRequests !== undefined && spec.connectionPool.tcp?.maxConnections === undefined) {
    refuse('connectionPool.http.http1MaxPendingRequests', 'has no effect without connectionPool.tcp.maxConnections: HTTP/1.1 requests wait for a connection only when that limit is reached');
  }
  const od = spec.outlierDetection;
  if (od && od.consecutive5xxErrors === 0 && (od.consecutiveGatewayErrors ?? 0) === 0) {
    refuse('outlierDetection', 'consecutive5xxErrors and consecutiveGatewayErrors are both 0: nothing would ever be ejected (omit outlierDetection instead)');
  }

  const rl = spec.rateLimit;
  if (rl?.perPrincipal) {
    const seen = new Set<string>();
    rl.perPrincipal.forEach((p, i) =>
      p.principals.forEach((pr, j) => {
        const field = `rateLimit.perPrincipal[${i}].principals[${j}]`;
        if (!PRINCIPAL.test(pr)) refuse(field, `must be a SPIFFE identity <trust-domain>/ns/<namespace>/sa/<serviceaccount> (got ${JSON.stringify(pr)})`);
        const norm = pr.startsWith('spiffe://') ? pr : `spiffe://${pr}`;
        if (seen.has(norm)) refuse(field, `${JSON.stringify(pr)} is listed twice: a caller has one bucket`);
        seen.add(norm);
      }),
    );
  }

  const fault = spec.fault;
  if (fault) {
    if (!fault.delay && !fault.abort) refuse('fault', 'set delay, abort or both');
    if (fault.abort && (fault.abort.httpStatus === undefined) === (fault.abort.grpcStatus === undefined)) refuse('fault.abort', 'set exactly one of httpStatus or grpcStatus');
  }

  const fb = spec.fallback;
  if (fb) {
    if (!fb.backendRef === !fb.response) refuse('fallback', 'set exactly one of backendRef or response');
    if (fb.backendRef && fb.backendRef.name === spec.targetRef.name) refuse('fallback.backendRef.name', `is the policy's own Service ${JSON.stringify(spec.targetRef.name)}: a fallback must be another Service`);
    for (const name of Object.keys(fb.response?.headers ?? {})) {
      if (!TOKEN.test(name)) refuse(`fallback.response.headers.${name}`, 'is not a valid header name');
      if (HOP_BY_HOP.has(name.toLowerCase())) refuse(`fallback.response.headers.${name}`, 'is set by the proxy (framing or hop-by-hop), not by a fallback response');
    }
    if (fb.on && new Set(fb.on).size !== fb.on.length) refuse('fallback.on', 'lists a condition twice');
  }

  for (const [path, what] of Object.entries(NOT_YET_ENFORCED)) {
    if (get(spec, path) !== undefined) refuse(path, `is not applied by this version of Weft yet (${what}); remove it rather than have it ignored`);
  }
}
