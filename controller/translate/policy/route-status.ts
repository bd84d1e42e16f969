// Route status as the Gateway API reports it, per parent: Accepted (the parent Service, and port when
// given, exist) and ResolvedRefs (every backendRef, mirrors included, resolves; else the first reason:
// BackendNotFound, InvalidKind). The controller serves it as JSON for the operators' CLI
// and page (docs/routing.md has the shape); in a cluster it is what status.parents[] would hold.
import type { Service } from '../../../common/mesh.js';
import type { RouteCondition, RouteStatus } from '../../../common/policy/route.js';
import type { KubeObject } from '../../sources/types.js';
import type { ObjectStore } from '../../store/object-store.js';
import type { PolicyCompileContext } from './compile.js';
import { parentsOf, resolveBackend, type SpecFilter, type SpecRoute } from './route.js';

const MESSAGES: Record<string, string> = {
  BackendNotFound: 'no Service with that name and port; its share of requests is answered with 500',
  InvalidKind: 'only core Services (group "", kind Service) can be backends; its share is answered with 500',
};

export function routeStatus(o: KubeObject, ctx: PolicyCompileContext): RouteStatus {
  const ns = o.metadata.namespace!;
  const spec = (o.spec ?? {}) as SpecRoute;
  const parents = parentsOf(o);
  const unresolved: RouteStatus['unresolvedBackends'] = [];
  const check = (ref: Parameters<typeof resolveBackend>[0], field: string) => {
    const b = resolveBackend(ref, ns, ctx);
    if (b.unresolved) unresolved.push({ field, service: b.service, port: b.port, reason: b.unresolved });
  };
  const mirrors = (fs: SpecFilter[] | undefined, at: string) =>
    (fs ?? []).forEach((f, k) => f.requestMirror && check(f.requestMirror.backendRef, `${at}.filters[${k}].requestMirror.backendRef`));
  (spec.rules ?? []).forEach((r, i) => {
    mirrors(r.filters, `spec.rules[${i}]`);
    (r.backendRefs ?? []).forEach((b, j) => {
      check(b, `spec.rules[${i}].backendRefs[${j}]`);
      mirrors(b.filters, `spec.rules[${i}].backendRefs[${j}]`);
    });
  });
  const resolved: RouteCondition = unresolved.length === 0
    ? { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: 'all backend references resolved' }
    : { type: 'ResolvedRefs', status: 'False', reason: unresolved[0]!.reason, message: `${unresolved[0]!.field} (${unresolved[0]!.service}:${unresolved[0]!.port}): ${MESSAGES[unresolved[0]!.reason] ?? unresolved[0]!.reason}` };
  const services = new Map<string, Service>(ctx.services.map((s) => [`${s.namespace}/${s.name}`, s]));
  return {
    kind: o.kind === 'GRPCRoute' ? 'GRPCRoute' : 'HTTPRoute',
    namespace: ns,
    name: o.metadata.name,
    parents: parents.map((p) => {
      const svc = services.get(p.service);
      let accepted: RouteCondition;
      if (!svc) accepted = { type: 'Accepted', status: 'False', reason: 'NoMatchingParent', message: `Service ${p.service} does not exist` };
      else if (p.port !== undefined && !svc.ports.some((sp) => sp.port === p.port)) accepted = { type: 'Accepted', status: 'False', reason: 'NoMatchingParent', message: `Service ${p.service} has no port ${p.port}` };
      else accepted = { type: 'Accepted', status: 'True', reason: 'Accepted', message: p.service.split('/')[0] === ns ? 'applies to every caller of the Service' : `consumer route: applies to callers in namespace ${ns} only` };
      return { service: p.service, ...(p.port !== undefined ? { port: p.port } : {}), conditions: [accepted, resolved] };
    }),
    unresolvedBackends: unresolved,
  };
}

/** Status of every HTTPRoute and GRPCRoute in the store, sorted by kind, namespace, name. */
export function routeStatuses(store: ObjectStore, ctx: PolicyCompileContext): RouteStatus[] {
  const out = [...store.list('HTTPRoute'), ...store.list('GRPCRoute')].map((o) => routeStatus(o, ctx));
  const key = (s: RouteStatus) => `${s.kind}/${s.namespace}/${s.name}`;
  return out.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
