// HTTPRoute / GRPCRoute -> CompiledRoute (Gateway API v1, mesh profile). The store has already refused what
// Weft does not enforce (controller/store/semantics/httproute.ts, grpcroute.ts), so everything here is
// supported; what can still be wrong depends on other objects (a backend Service that does not exist, a
// port it does not have, a kind that is not a Service) and is compiled as an unresolved backend: the
// agent answers that backend's share with 500 and the route's status says why (route-status.ts).
import { policyEntryKey, type CompiledPolicy } from '../../../common/policy.js';
import type {
  BackendTarget,
  CompiledBackend,
  CompiledMatch,
  CompiledRoute,
  CompiledRule,
  HeaderModifier,
  PathModifier,
  RouteFilter,
  RouteParent,
  StringMatch,
} from '../../../common/policy/route.js';
import type { Service } from '../../../common/mesh.js';
import type { KubeObject } from '../../sources/types.js';
import type { PolicyCompileContext } from './compile.js';
import { gatewayDurationMs } from './gateway-duration.js';

// The spec as the schema admits it (kinds.ts).
interface ObjRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
}
interface NameValue {
  name: string;
  value: string;
}
interface SpecHeaderModifier {
  set?: NameValue[];
  add?: NameValue[];
  remove?: string[];
}
interface SpecPathModifier {
  type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  replaceFullPath?: string;
  replacePrefixMatch?: string;
}
export interface SpecFilter {
  type: string;
  requestHeaderModifier?: SpecHeaderModifier;
  responseHeaderModifier?: SpecHeaderModifier;
  requestRedirect?: { scheme?: 'http' | 'https'; hostname?: string; path?: SpecPathModifier; port?: number; statusCode?: 301 | 302 | 303 | 307 | 308 };
  urlRewrite?: { hostname?: string; path?: SpecPathModifier };
  requestMirror?: { backendRef: ObjRef; percent?: number; fraction?: { numerator: number; denominator?: number } };
}
export interface SpecBackendRef extends ObjRef {
  weight?: number;
  filters?: SpecFilter[];
}
interface SpecStringMatch {
  type?: 'Exact' | 'RegularExpression';
  name: string;
  value: string;
}
export interface SpecHttpMatch {
  path?: { type?: 'Exact' | 'PathPrefix' | 'RegularExpression'; value?: string };
  headers?: SpecStringMatch[];
  queryParams?: SpecStringMatch[];
  method?: string;
}
export interface SpecGrpcMatch {
  method?: { type?: 'Exact' | 'RegularExpression'; service?: string; method?: string };
  headers?: SpecStringMatch[];
}
export interface SpecRule {
  name?: string;
  matches?: (SpecHttpMatch & SpecGrpcMatch)[];
  filters?: SpecFilter[];
  backendRefs?: SpecBackendRef[];
  timeouts?: { request?: string; backendRequest?: string };
  retry?: { codes?: number[]; attempts?: number; backoff?: string };
}
export interface SpecRoute {
  parentRefs?: ObjRef[];
  rules?: SpecRule[];
}

/** The Services of the mesh by "<ns>/<name>", built once per compile context. */
const serviceIndex = new WeakMap<readonly Service[], Map<string, Service>>();
function servicesOf(ctx: PolicyCompileContext): Map<string, Service> {
  let m = serviceIndex.get(ctx.services);
  if (!m) {
    m = new Map(ctx.services.map((s) => [`${s.namespace}/${s.name}`, s] as const));
    serviceIndex.set(ctx.services, m);
  }
  return m;
}

export function parentsOf(o: KubeObject): RouteParent[] {
  const ns = o.metadata.namespace!;
  const spec = (o.spec ?? {}) as SpecRoute;
  return (spec.parentRefs ?? []).map((p) => ({ service: `${p.namespace || ns}/${p.name}`, ...(p.port ? { port: p.port } : {}) }));
}

/**
 * A backendRef resolved against the mesh's Services. In the mesh profile a backendRef may name a Service in
 * any namespace without a ReferenceGrant (GEP-1294: mesh routes augment Services that callers can reach
 * anyway, they expose nothing new), so only the kind and the existence of the Service port are checked.
 */
export function resolveBackend(ref: ObjRef, routeNs: string, ctx: PolicyCompileContext): BackendTarget {
  const service = `${ref.namespace || routeNs}/${ref.name}`;
  const port = ref.port ?? 0;
  if ((ref.group ?? '') !== '' || (ref.kind ?? 'Service') !== 'Service') return { service, port, unresolved: 'InvalidKind' };
  const svc = servicesOf(ctx).get(service);
  if (!svc || !svc.ports.some((p) => p.port === port && p.protocol === 'TCP')) return { service, port, unresolved: 'BackendNotFound' };
  return { service, port };
}

const stringMatches = (ms: SpecStringMatch[] | undefined, lower: boolean): StringMatch[] =>
  (ms ?? []).map((m) => ({ type: m.type ?? 'Exact', name: lower ? m.name.toLowerCase() : m.name, value: m.value }));

function headerModifier(m: SpecHeaderModifier): HeaderModifier {
  return {
    set: (m.set ?? []).map((h) => [h.name, h.value]),
    add: (m.add ?? []).map((h) => [h.name, h.value]),
    remove: (m.remove ?? []).map((n) => n.toLowerCase()),
  };
}

function pathModifier(p: SpecPathModifier | undefined): PathModifier | undefined {
  if (!p) return undefined;
  return p.type === 'ReplaceFullPath' ? { type: 'ReplaceFullPath', value: p.replaceFullPath ?? '/' } : { type: 'ReplacePrefixMatch', value: p.replacePrefixMatch ?? '/' };
}

function compileFilter(f: SpecFilter, routeNs: string, ctx: PolicyCompileContext): RouteFilter {
  switch (f.type) {
    case 'RequestHeaderModifier':
      return { type: 'RequestHeaderModifier', modifier: headerModifier(f.requestHeaderModifier ?? {}) };
    case 'ResponseHeaderModifier':
      return { type: 'ResponseHeaderModifier', modifier: headerModifier(f.responseHeaderModifier ?? {}) };
    case 'RequestRedirect': {
      const r = f.requestRedirect ?? {};
      const path = pathModifier(r.path);
      return { type: 'RequestRedirect', ...(r.scheme ? { scheme: r.scheme } : {}), ...(r.hostname ? { hostname: r.hostname } : {}), ...(r.port ? { port: r.port } : {}), ...(path ? { path } : {}), statusCode: r.statusCode ?? 302 };
    }
    case 'URLRewrite': {
      const r = f.urlRewrite ?? {};
      const path = pathModifier(r.path);
      return { type: 'URLRewrite', ...(r.hostname ? { hostname: r.hostname } : {}), ...(path ? { path } : {}) };
    }
    case 'RequestMirror': {
      const m = f.requestMirror!;
      // percent and fraction are alternatives (the semantic check refuses both); neither = 100%.
      const percent = m.percent ?? (m.fraction ? (100 * m.fraction.numerator) / (m.fraction.denominator ?? 100) : 100);
      return { type: 'RequestMirror', backend: resolveBackend(m.backendRef, routeNs, ctx), percent };
    }
    default:
      // unreachable: the store refuses any other filter type when the route is applied
      throw new Error(`filter type ${f.type} reached the route compiler`);
  }
}

function httpMatch(m: SpecHttpMatch): CompiledMatch {
  return {
    path: { type: m.path?.type ?? 'PathPrefix', value: m.path?.value ?? '/' },
    headers: stringMatches(m.headers, true),
    queryParams: stringMatches(m.queryParams, false),
    ...(m.method ? { method: m.method } : {}),
  };
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** A gRPC method match is a match on the HTTP/2 :path "/<service>/<method>". */
export function grpcMatch(m: SpecGrpcMatch): CompiledMatch {
  const headers = stringMatches(m.headers, true);
  const mm = m.method;
  const base = { headers, queryParams: [], method: 'POST' };
  if (!mm || (!mm.service && !mm.method)) return { path: { type: 'PathPrefix', value: '/' }, ...base };
  const type = mm.type ?? 'Exact';
  const grpc = { type, ...(mm.service ? { service: mm.service } : {}), ...(mm.method ? { method: mm.method } : {}) };
  if (type === 'Exact') {
    if (mm.service && mm.method) return { path: { type: 'Exact', value: `/${mm.service}/${mm.method}` }, ...base, grpc };
    if (mm.service) return { path: { type: 'PathPrefix', value: `/${mm.service}` }, ...base, grpc };
    return { path: { type: 'RegularExpression', value: `/[^/]+/${escapeRe(mm.method!)}` }, ...base, grpc };
  }
  return { path: { type: 'RegularExpression', value: `/(?:${mm.service ?? '[^/]+'})/(?:${mm.method ?? '[^/]+'})` }, ...base, grpc };
}

function compileRule(r: SpecRule, index: number, grpc: boolean, routeNs: string, ctx: PolicyCompileContext): CompiledRule {
  const matches = (r.matches ?? []).map((m) => (grpc ? grpcMatch(m) : httpMatch(m)));
  if (matches.length === 0) matches.push(grpc ? grpcMatch({}) : httpMatch({}));
  const backends: CompiledBackend[] = (r.backendRefs ?? []).map((b) => ({
    ...resolveBackend(b, routeNs, ctx),
    weight: b.weight ?? 1,
    filters: (b.filters ?? []).map((f) => compileFilter(f, routeNs, ctx)),
  }));
  const t = r.timeouts;
  const rule: CompiledRule = {
    name: r.name ?? `rule-${index}`,
    index,
    matches,
    filters: (r.filters ?? []).map((f) => compileFilter(f, routeNs, ctx)),
    backends,
    timeouts: {
      ...(t?.request !== undefined ? { requestMs: gatewayDurationMs(t.request) } : {}),
      ...(t?.backendRequest !== undefined ? { backendRequestMs: gatewayDurationMs(t.backendRequest) } : {}),
    },
  };
  if (r.retry) rule.retry = { attempts: r.retry.attempts ?? 1, codes: [...(r.retry.codes ?? [])], backoffMs: r.retry.backoff ? gatewayDurationMs(r.retry.backoff) : 0 };
  return rule;
}

export function compileRouteSpec(o: KubeObject, ctx: PolicyCompileContext): CompiledRoute {
  const ns = o.metadata.namespace!;
  const spec = (o.spec ?? {}) as SpecRoute;
  const parents = parentsOf(o);
  const created = Date.parse(String(o.metadata.creationTimestamp ?? ''));
  const grpc = o.kind === 'GRPCRoute';
  return {
    parents,
    namespace: ns,
    createdMs: Number.isFinite(created) ? created : 0,
    rules: (spec.rules ?? []).map((r, i) => compileRule(r, i, grpc, ns, ctx)),
  };
}

export function compileRoute(o: KubeObject, ctx: PolicyCompileContext): CompiledPolicy[] {
  const ns = o.metadata.namespace!;
  return [
    {
      kind: o.kind === 'GRPCRoute' ? 'GRPCRoute' : 'HTTPRoute',
      key: policyEntryKey(o.kind, ns, o.metadata.name),
      namespace: ns,
      name: o.metadata.name,
      route: compileRouteSpec(o, ctx),
    },
  ];
}
