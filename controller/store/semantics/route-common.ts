// Checks shared by HTTPRoute and GRPCRoute (Gateway API v1, mesh profile): what the upstream CRDs' CEL
// rules refuse, plus everything Weft does not enforce, each refused naming the object and the field.
import { WeftConfigError } from '../../../common/errors.js';
import type { KubeObject } from '../../sources/types.js';

interface Ref {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
  sectionName?: string;
}
interface NameValue {
  name: string;
  value: string;
}
interface HeaderMod {
  set?: NameValue[];
  add?: NameValue[];
  remove?: string[];
}
export interface Filter {
  type: string;
  [k: string]: unknown;
}

const FILTER_FIELD: Record<string, string> = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  RequestMirror: 'requestMirror',
  ExtensionRef: 'extensionRef',
  CORS: 'cors',
  ExternalAuth: 'externalAuth',
};

export const fail = (where: string, field: string, why: string): never => {
  throw new WeftConfigError(`${where}, field ${field}`, why);
};

export function checkParents(o: KubeObject, where: string): void {
  const spec = (o.spec ?? {}) as { parentRefs?: Ref[]; hostnames?: string[] };
  if (!spec.parentRefs || spec.parentRefs.length === 0) {
    fail(where, 'spec.parentRefs', 'must name at least one Service (group "", kind Service): Weft routes traffic inside the mesh (Gateway API mesh profile) and has no Gateways');
  }
  spec.parentRefs!.forEach((p, i) => {
    const at = `spec.parentRefs[${i}]`;
    if (p.kind !== 'Service' || p.group !== '') {
      fail(where, `${at}.kind`, `must be kind: Service with group: "" (got ${p.group === undefined ? 'the default group gateway.networking.k8s.io' : `group "${p.group}"`}, kind ${p.kind ?? 'Gateway (the default)'}): Weft has no Gateways; routes attach to Services (GAMMA)`);
    }
    if (p.sectionName !== undefined) fail(where, `${at}.sectionName`, 'is not supported for a Service parent; use port to attach to one Service port');
  });
  if (spec.hostnames && spec.hostnames.length > 0) {
    fail(where, 'spec.hostnames', 'is not supported on mesh routes: a route applies to callers of its parent Service (by name or ClusterIP), whatever Host they send; remove hostnames');
  }
}

function checkRegex(where: string, field: string, value: string): void {
  try {
    new RegExp(value);
  } catch (e) {
    fail(where, field, `is not a valid regular expression: ${(e as Error).message}`);
  }
}

export function checkStringMatches(where: string, at: string, ms: (NameValue & { type?: string })[] | undefined, caseInsensitive: boolean): void {
  const seen = new Set<string>();
  (ms ?? []).forEach((m, k) => {
    const n = caseInsensitive ? m.name.toLowerCase() : m.name;
    if (seen.has(n)) fail(where, `${at}[${k}].name`, `"${m.name}" is matched twice in one match; match it once`);
    seen.add(n);
    if (m.type === 'RegularExpression') checkRegex(where, `${at}[${k}].value`, m.value);
  });
}

function checkHeaderModifier(where: string, at: string, m: HeaderMod | undefined): void {
  if (!m) return;
  const seen = new Set<string>();
  for (const [list, names] of [['set', (m.set ?? []).map((h) => h.name)], ['add', (m.add ?? []).map((h) => h.name)], ['remove', m.remove ?? []]] as const) {
    names.forEach((n, k) => {
      const lower = n.toLowerCase();
      if (seen.has(lower)) fail(where, `${at}.${list}[${k}]`, `header "${n}" is modified twice in one filter (names are case-insensitive)`);
      seen.add(lower);
    });
  }
}

function checkServiceRef(where: string, at: string, r: Ref, what: string): void {
  if ((r.group ?? '') !== '' || (r.kind ?? 'Service') !== 'Service') fail(where, `${at}.kind`, `${what} must be a core Service (group "", kind Service); Weft cannot send to ${r.group ?? ''}/${r.kind}`);
  if (r.port === undefined) fail(where, `${at}.port`, `is required for a Service ${what}`);
}

/**
 * One filter list: every type must be one Weft enforces here (`allowed`), carry exactly its own
 * configuration field, and (except RequestMirror) appear at most once, as the Gateway API's CEL rules say.
 */
export function checkFilters(where: string, at: string, filters: Filter[] | undefined, allowed: readonly string[], context: string): void {
  const seen = new Set<string>();
  (filters ?? []).forEach((f, k) => {
    const fat = `${at}[${k}]`;
    if (!allowed.includes(f.type)) {
      const why = f.type === 'ExtensionRef' ? 'ExtensionRef filters are not supported by Weft' : f.type === 'CORS' ? 'CORS filters are not supported by Weft' : f.type === 'ExternalAuth' ? 'ExternalAuth filters are not supported by Weft' : `"${f.type}" is not a filter Weft supports`;
      fail(where, `${fat}.type`, `${why} ${context} (supported: ${allowed.join(', ')})`);
    }
    for (const [type, field] of Object.entries(FILTER_FIELD)) {
      if (type === f.type && f[field] === undefined && type !== 'RequestRedirect' && type !== 'URLRewrite') fail(where, `${fat}.${field}`, `is required for a ${type} filter`);
      if (type !== f.type && f[field] !== undefined) fail(where, `${fat}.${field}`, `is only allowed with type ${type} (this filter is ${f.type})`);
    }
    if (f.type !== 'RequestMirror') {
      if (seen.has(f.type)) fail(where, `${fat}.type`, `${f.type} appears twice in one filter list; merge them`);
      seen.add(f.type);
    }
    if (f.type === 'RequestHeaderModifier') checkHeaderModifier(where, `${fat}.requestHeaderModifier`, f.requestHeaderModifier as HeaderMod);
    if (f.type === 'ResponseHeaderModifier') checkHeaderModifier(where, `${fat}.responseHeaderModifier`, f.responseHeaderModifier as HeaderMod);
    if (f.type === 'RequestMirror') {
      const m = f.requestMirror as { backendRef: Ref; percent?: number; fraction?: { numerator: number; denominator?: number } };
      checkServiceRef(where, `${fat}.requestMirror.backendRef`, m.backendRef, 'mirror backend');
      if (m.percent !== undefined && m.fraction !== undefined) fail(where, `${fat}.requestMirror.fraction`, 'percent and fraction are alternatives; set one');
      if (m.fraction && m.fraction.numerator > (m.fraction.denominator ?? 100)) fail(where, `${fat}.requestMirror.fraction.numerator`, 'must not exceed the denominator');
    }
  });
  if (seen.has('RequestRedirect') && seen.has('URLRewrite')) fail(where, at, 'RequestRedirect and URLRewrite cannot be used together');
}

export function checkBackendRefs(where: string, at: string, refs: (Ref & { filters?: Filter[] })[] | undefined, allowedFilters: readonly string[]): void {
  (refs ?? []).forEach((b, j) => {
    if ((b.group ?? '') === '' && (b.kind ?? 'Service') === 'Service' && b.port === undefined) fail(where, `${at}[${j}].port`, 'is required when the backend is a Service');
    checkFilters(where, `${at}[${j}].filters`, b.filters, allowedFilters, 'on a backendRef');
  });
}

export function checkNoSessionPersistence(where: string, rules: { sessionPersistence?: unknown }[] | undefined): void {
  (rules ?? []).forEach((r, i) => {
    if (r.sessionPersistence !== undefined) fail(where, `spec.rules[${i}].sessionPersistence`, 'is not supported by Weft (for sticky backends use a TrafficPolicy loadBalancer.consistentHash on the Service)');
  });
}
