// GRPCRoute checks beyond the schema (Gateway API v1, mesh profile): the upstream CRD's rules and every
// field Weft does not enforce, refused naming the object and field.
import type { KubeObject } from '../../sources/types.js';
import type { SpecRule } from '../../translate/policy/route.js';
import { checkBackendRefs, checkFilters, checkNoSessionPersistence, checkParents, checkStringMatches, fail, type Filter } from './route-common.js';

export const GRPCROUTE_FILTERS = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror'] as const;
const BACKEND_FILTERS = ['RequestHeaderModifier', 'ResponseHeaderModifier'] as const;
const SERVICE_RE = /^[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*$/;
const METHOD_RE = /^[A-Za-z_][A-Za-z_0-9]*$/;

export function checkGrpcRoute(o: KubeObject, where: string): void {
  checkParents(o, where);
  const rules = ((o.spec ?? {}) as { rules?: (SpecRule & { sessionPersistence?: unknown })[] }).rules ?? [];
  checkNoSessionPersistence(where, rules);
  rules.forEach((r, i) => {
    const at = `spec.rules[${i}]`;
    (r.matches ?? []).forEach((m, j) => {
      const mat = `${at}.matches[${j}]`;
      const mm = m.method;
      if (mm) {
        const type = mm.type ?? 'Exact';
        if (!mm.service && !mm.method) fail(where, `${mat}.method`, 'must set service, method or both');
        for (const [k, v, re] of [['service', mm.service, SERVICE_RE], ['method', mm.method, METHOD_RE]] as const) {
          if (v === undefined) continue;
          if (type === 'Exact' && !re.test(v)) fail(where, `${mat}.method.${k}`, `"${v}" is not a valid gRPC ${k} name`);
          if (type === 'RegularExpression') {
            try {
              new RegExp(v);
            } catch (e) {
              fail(where, `${mat}.method.${k}`, `is not a valid regular expression: ${(e as Error).message}`);
            }
          }
        }
      }
      checkStringMatches(where, `${mat}.headers`, m.headers as never, true);
    });
    const extra = r as { timeouts?: unknown; retry?: unknown };
    if (extra.timeouts !== undefined || extra.retry !== undefined) fail(where, `${at}.${extra.timeouts !== undefined ? 'timeouts' : 'retry'}`, 'is not part of GRPCRoute; set timeouts and retries (retryOn: unavailable, cancelled, ...) in a TrafficPolicy for the Service');
    checkFilters(where, `${at}.filters`, r.filters as Filter[] | undefined, GRPCROUTE_FILTERS, 'on a GRPCRoute rule');
    checkBackendRefs(where, `${at}.backendRefs`, r.backendRefs as never, BACKEND_FILTERS);
  });
}
