// AuthorizationPolicy -> CompiledAuthz (common/policy/authz.ts), Istio's semantics. The same function
// validates (the store's semantic check runs it and keeps nothing) and compiles (the translator), so an
// object that reaches the agents is exactly one the compiler understood field by field. Fields Istio has and
// Weft does not enforce are refused naming the field and why, never dropped.
import { WeftConfigError } from '../../../common/errors.js';
import { policyEntryKey, type CompiledPolicy } from '../../../common/policy.js';
import {
  DRY_RUN_ANNOTATION,
  type AuthzAction,
  type CompiledAuthz,
  type CompiledCondition,
  type CompiledOperation,
  type CompiledRule,
  type CompiledSource,
} from '../../../common/policy/authz.js';
import type { KubeObject } from '../../sources/types.js';
import type { PolicyCompileContext } from './compile.js';
import { cidr, fail, portNumber, principalMatch, serviceAccountRef, stringMatch } from './authz-fields.js';

type Obj = Record<string, unknown>;

/** Istio fields Weft knows and does not enforce, with the reason given to the user. */
const UNSUPPORTED_SOURCE: Record<string, string> = {
  requestPrincipals: 'request principals come from JWT validation (RequestAuthentication), which Weft does not do',
  notRequestPrincipals: 'request principals come from JWT validation (RequestAuthentication), which Weft does not do',
  remoteIpBlocks: 'remote IPs come from X-Forwarded-For as trusted by an ingress gateway, which Weft does not have; use ipBlocks',
  notRemoteIpBlocks: 'remote IPs come from X-Forwarded-For as trusted by an ingress gateway, which Weft does not have; use notIpBlocks',
};
const UNSUPPORTED_SPEC: Record<string, string> = {
  provider: 'external authorization (action CUSTOM) is not supported by Weft',
  targetRef: 'Weft selects workloads with spec.selector only',
  targetRefs: 'Weft selects workloads with spec.selector only',
};

const SOURCE_FIELDS = new Set(['principals', 'notPrincipals', 'namespaces', 'notNamespaces', 'serviceAccounts', 'notServiceAccounts', 'ipBlocks', 'notIpBlocks']);
const OPERATION_FIELDS = new Set(['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths']);
const HEADER_KEY = /^request\.headers\[([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\]$/;
const SUPPORTED_WHEN = 'source.principal, source.namespace, source.ip, destination.ip, destination.port, request.headers[<name>]';

function strings(v: unknown, where: string, path: string): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) return fail(where, path, 'must be a list of strings');
  if (v.length === 0) return fail(where, path, 'must not be an empty list (omit the field instead)');
  return v as string[];
}

function compileSource(src: Obj, where: string, path: string): CompiledSource {
  const out: CompiledSource = {};
  let any = false;
  for (const [k, v] of Object.entries(src)) {
    if (v === undefined) continue;
    const p = `${path}.${k}`;
    if (UNSUPPORTED_SOURCE[k]) fail(where, p, `is not supported: ${UNSUPPORTED_SOURCE[k]}`);
    if (!SOURCE_FIELDS.has(k)) fail(where, p, 'is not a field of an AuthorizationPolicy source');
    const list = strings(v, where, p);
    any = true;
    switch (k) {
      case 'principals':
      case 'notPrincipals':
        out[k] = list.map((s, i) => principalMatch(s, where, `${p}[${i}]`));
        break;
      case 'namespaces':
      case 'notNamespaces':
        out[k] = list.map((s, i) => stringMatch(s, where, `${p}[${i}]`));
        break;
      case 'serviceAccounts':
      case 'notServiceAccounts':
        out[k] = list.map((s, i) => serviceAccountRef(s, where, `${p}[${i}]`));
        break;
      case 'ipBlocks':
      case 'notIpBlocks':
        out[k] = list.map((s, i) => cidr(s, where, `${p}[${i}]`));
        break;
    }
  }
  if (!any) fail(where, path, 'must set at least one field (Istio refuses an empty source; omit `from` to match every source)');
  if ((out.serviceAccounts || out.notServiceAccounts) && (out.principals || out.notPrincipals || out.namespaces || out.notNamespaces)) {
    fail(where, `${path}.serviceAccounts`, 'cannot be combined with principals or namespaces in the same source (as in Istio)');
  }
  return out;
}

function compileOperation(op: Obj, where: string, path: string): CompiledOperation {
  const out: CompiledOperation = {};
  let any = false;
  for (const [k, v] of Object.entries(op)) {
    if (v === undefined) continue;
    const p = `${path}.${k}`;
    if (!OPERATION_FIELDS.has(k)) fail(where, p, 'is not a field of an AuthorizationPolicy operation');
    any = true;
    if (k === 'ports' || k === 'notPorts') {
      if (!Array.isArray(v) || v.length === 0) fail(where, p, 'must be a non-empty list of ports');
      out[k] = (v as unknown[]).map((x, i) => portNumber(x, where, `${p}[${i}]`));
      continue;
    }
    const list = strings(v, where, p);
    if (k === 'hosts' || k === 'notHosts') out[k] = list.map((s, i) => stringMatch(s, where, `${p}[${i}]`, { ci: true }));
    else if (k === 'paths' || k === 'notPaths') {
      out[k] = list.map((s, i) => {
        if (s.includes('{')) fail(where, `${p}[${i}]`, `"${s}": path templates ({*}, {**}) are not supported; use a "*" prefix or suffix`);
        if (s !== '*' && !s.startsWith('/') && !s.startsWith('*')) fail(where, `${p}[${i}]`, `"${s}" must start with "/" (or be a "*" pattern)`);
        return stringMatch(s, where, `${p}[${i}]`);
      });
    } else out[k as 'methods' | 'notMethods'] = list.map((s, i) => stringMatch(s, where, `${p}[${i}]`));
  }
  if (!any) fail(where, path, 'must set at least one field (Istio refuses an empty operation; omit `to` to match every operation)');
  return out;
}

function compileCondition(c: Obj, where: string, path: string): CompiledCondition {
  const key = c.key;
  if (typeof key !== 'string' || key === '') return fail(where, `${path}.key`, 'is required');
  for (const k of Object.keys(c)) if (k !== 'key' && k !== 'values' && k !== 'notValues') fail(where, `${path}.${k}`, 'is not a field of a condition');
  const has = (f: 'values' | 'notValues') => c[f] !== undefined;
  if (!has('values') && !has('notValues')) fail(where, path, `condition on ${key} needs values or notValues`);
  const list = (f: 'values' | 'notValues') => (has(f) ? strings(c[f], where, `${path}.${f}`) : undefined);
  const each = <T>(f: 'values' | 'notValues', parse: (s: string, p: string) => T): T[] | undefined => list(f)?.map((s, i) => parse(s, `${path}.${f}[${i}]`));
  const both = <T>(parse: (s: string, p: string) => T) => {
    const values = each('values', parse);
    const notValues = each('notValues', parse);
    return { ...(values ? { values } : {}), ...(notValues ? { notValues } : {}) };
  };
  switch (key) {
    case 'source.principal':
      return { key, ...both((s, p) => principalMatch(s, where, p)) };
    case 'source.namespace':
      return { key, ...both((s, p) => stringMatch(s, where, p)) };
    case 'source.ip':
    case 'destination.ip':
      return { key, ...both((s, p) => cidr(s, where, p)) };
    case 'destination.port':
      return { key, ...both((s, p) => portNumber(s, where, p)) };
  }
  const h = HEADER_KEY.exec(key);
  if (h) return { key: 'request.headers', header: h[1]!.toLowerCase(), ...both((s, p) => stringMatch(s, where, p)) };
  if (key.startsWith('request.headers')) return fail(where, `${path}.key`, `"${key}" must be request.headers[<header name>]`);
  if (key.startsWith('request.auth.')) return fail(where, `${path}.key`, `"${key}" is not supported: it needs JWT validation (RequestAuthentication), which Weft does not do`);
  if (key === 'remote.ip') return fail(where, `${path}.key`, '"remote.ip" is not supported (X-Forwarded-For from an ingress gateway); use source.ip');
  return fail(where, `${path}.key`, `"${key}" is not a condition Weft enforces; supported: ${SUPPORTED_WHEN}`);
}

function compileRule(r: unknown, where: string, path: string): CompiledRule {
  if (!r || typeof r !== 'object' || Array.isArray(r)) return fail(where, path, 'must be an object');
  const rule = r as Obj;
  const out: CompiledRule = {};
  for (const k of Object.keys(rule)) if (k !== 'from' && k !== 'to' && k !== 'when') fail(where, `${path}.${k}`, 'is not a field of a rule (from, to, when)');
  const list = (k: string): Obj[] | undefined => {
    const v = rule[k];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.length === 0) return fail(where, `${path}.${k}`, 'must be a non-empty list (omit it to match everything)');
    return v as Obj[];
  };
  const from = list('from');
  if (from) {
    out.from = from.map((f, i) => {
      const src = f?.source;
      if (!src || typeof src !== 'object') return fail(where, `${path}.from[${i}].source`, 'is required');
      for (const k of Object.keys(f)) if (k !== 'source') fail(where, `${path}.from[${i}].${k}`, 'is not a field of from (source)');
      return compileSource(src as Obj, where, `${path}.from[${i}].source`);
    });
  }
  const to = list('to');
  if (to) {
    out.to = to.map((t, i) => {
      const op = t?.operation;
      if (!op || typeof op !== 'object') return fail(where, `${path}.to[${i}].operation`, 'is required');
      for (const k of Object.keys(t)) if (k !== 'operation') fail(where, `${path}.to[${i}].${k}`, 'is not a field of to (operation)');
      return compileOperation(op as Obj, where, `${path}.to[${i}].operation`);
    });
  }
  const when = list('when');
  if (when) out.when = when.map((c, i) => compileCondition(c, where, `${path}.when[${i}]`));
  return out;
}

/** Validates and compiles one AuthorizationPolicy; throws WeftConfigError naming object and field. */
export function compileAuthzObject(o: KubeObject, where: string, rootNamespace: string): CompiledAuthz {
  const spec = (o.spec ?? {}) as Obj;
  for (const [k, why] of Object.entries(UNSUPPORTED_SPEC)) if (spec[k] !== undefined) fail(where, `spec.${k}`, `is not supported: ${why}`);
  const action = (spec.action ?? 'ALLOW') as string;
  if (action === 'CUSTOM') fail(where, 'spec.action', 'CUSTOM is not supported: Weft has no external authorization providers');
  if (action !== 'ALLOW' && action !== 'DENY' && action !== 'AUDIT') fail(where, 'spec.action', `"${action}" is not ALLOW, DENY or AUDIT`);
  const selector = spec.selector as { matchLabels?: Record<string, string> } | undefined;
  const matchLabels = selector?.matchLabels && Object.keys(selector.matchLabels).length > 0 ? { ...selector.matchLabels } : undefined;
  const annotations = (o.metadata.annotations ?? {}) as Record<string, string>;
  const dry = annotations[DRY_RUN_ANNOTATION];
  if (dry !== undefined && dry !== 'true' && dry !== 'false') fail(where, `metadata.annotations.${DRY_RUN_ANNOTATION}`, `must be "true" or "false" (got ${JSON.stringify(dry)})`);
  let rules: CompiledRule[] | undefined;
  if (spec.rules !== undefined) {
    if (!Array.isArray(spec.rules)) fail(where, 'spec.rules', 'must be a list');
    // Istio: an empty list is the same as no rules (matches nothing)
    rules = (spec.rules as unknown[]).length === 0 ? undefined : (spec.rules as unknown[]).map((r, i) => compileRule(r, where, `spec.rules[${i}]`));
  }
  const ns = o.metadata.namespace!;
  return {
    action: action as AuthzAction,
    dryRun: dry === 'true',
    scope: { meshWide: ns === rootNamespace, namespace: ns, ...(matchLabels ? { matchLabels } : {}) },
    rules,
  };
}

export function describeAuthz(o: KubeObject): string {
  return `AuthorizationPolicy ${o.metadata.namespace}/${o.metadata.name}`;
}

export function compileAuthorizationPolicy(o: KubeObject, ctx: PolicyCompileContext): CompiledPolicy[] {
  const ns = o.metadata.namespace!;
  let authz: CompiledAuthz;
  try {
    authz = compileAuthzObject(o, describeAuthz(o), ctx.rootNamespace);
  } catch (e) {
    // The store refused this object when it was applied; only a changed compiler could get here. Leave it
    // out rather than ship something the agents would misread; the error is the store's to report.
    if (e instanceof WeftConfigError) return [];
    throw e;
  }
  return [{ kind: 'AuthorizationPolicy', key: policyEntryKey('AuthorizationPolicy', ns, o.metadata.name), namespace: ns, name: o.metadata.name, authz }];
}
