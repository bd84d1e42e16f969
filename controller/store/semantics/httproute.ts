// HTTPRoute checks beyond the schema (Gateway API v1, mesh profile): the upstream CRD's CEL rules and every
// field Weft does not enforce, refused naming the object and field.
import type { KubeObject } from '../../sources/types.js';
import { gatewayDurationMs } from '../../translate/policy/gateway-duration.js';
import type { SpecRule } from '../../translate/policy/route.js';
import { checkBackendRefs, checkFilters, checkNoSessionPersistence, checkParents, checkStringMatches, fail, type Filter } from './route-common.js';

export const HTTPROUTE_FILTERS = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite', 'RequestMirror'] as const;
/** Per-backend filters: header modifiers only (what Weft applies per backend). */
export const BACKEND_FILTERS = ['RequestHeaderModifier', 'ResponseHeaderModifier'] as const;

function checkPathValue(where: string, field: string, type: string, value: string): void {
  if (type === 'RegularExpression') {
    try {
      new RegExp(value);
    } catch (e) {
      fail(where, field, `is not a valid regular expression: ${(e as Error).message}`);
    }
    return;
  }
  if (!value.startsWith('/')) fail(where, field, `must start with "/" (got "${value}")`);
  if (/\/\/|\/\.\/|\/\.\.\/|%2f|%2F|#/.test(value) || value.endsWith('/..') || value.endsWith('/.')) fail(where, field, `must not contain "//", "/./", "/../", "%2f" or "#" (got "${value}")`);
}

export function checkHttpRoute(o: KubeObject, where: string): void {
  checkParents(o, where);
  const rules = ((o.spec ?? {}) as { rules?: (SpecRule & { sessionPersistence?: unknown })[] }).rules ?? [];
  checkNoSessionPersistence(where, rules);
  rules.forEach((r, i) => {
    const at = `spec.rules[${i}]`;
    (r.matches ?? []).forEach((m, j) => {
      const mat = `${at}.matches[${j}]`;
      if (m.path) checkPathValue(where, `${mat}.path.value`, m.path.type ?? 'PathPrefix', m.path.value ?? '/');
      checkStringMatches(where, `${mat}.headers`, m.headers as never, true);
      checkStringMatches(where, `${mat}.queryParams`, m.queryParams as never, false);
    });
    const filters = (r.filters ?? []) as Filter[];
    checkFilters(where, `${at}.filters`, filters, HTTPROUTE_FILTERS, 'on an HTTPRoute rule');
    const redirect = filters.find((f) => f.type === 'RequestRedirect');
    if (redirect && (r.backendRefs ?? []).length > 0) fail(where, `${at}.backendRefs`, 'must be empty when the rule has a RequestRedirect filter (the redirect is the answer)');
    filters.forEach((f, k) => {
      const p = ((f.requestRedirect ?? f.urlRewrite) as { path?: { type: string; replaceFullPath?: string; replacePrefixMatch?: string } } | undefined)?.path;
      if (!p) return;
      const pat = `${at}.filters[${k}].${f.type === 'RequestRedirect' ? 'requestRedirect' : 'urlRewrite'}.path`;
      if (p.type === 'ReplaceFullPath' && p.replacePrefixMatch !== undefined) fail(where, `${pat}.replacePrefixMatch`, 'is only allowed with type ReplacePrefixMatch');
      if (p.type === 'ReplacePrefixMatch' && p.replaceFullPath !== undefined) fail(where, `${pat}.replaceFullPath`, 'is only allowed with type ReplaceFullPath');
      const v = p.type === 'ReplaceFullPath' ? p.replaceFullPath : p.replacePrefixMatch;
      if (v !== undefined) checkPathValue(where, `${pat}.${p.type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch'}`, 'Exact', v);
      if (p.type === 'ReplacePrefixMatch') {
        const ms = r.matches ?? [];
        if (ms.length !== 1 || (ms[0]!.path?.type ?? 'PathPrefix') !== 'PathPrefix') fail(where, `${pat}.type`, 'ReplacePrefixMatch needs the rule to have exactly one match, with a PathPrefix path');
      }
    });
    for (const f of filters) {
      const u = f.urlRewrite as { hostname?: string } | undefined;
      const rr = f.requestRedirect as { hostname?: string } | undefined;
      for (const h of [u?.hostname, rr?.hostname]) if (h !== undefined && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(h)) fail(where, `${at}.filters`, `hostname "${h}" is not a valid DNS name`);
    }
    checkBackendRefs(where, `${at}.backendRefs`, r.backendRefs as never, BACKEND_FILTERS);
    const t = r.timeouts;
    if (t?.request !== undefined && t.backendRequest !== undefined) {
      const req = gatewayDurationMs(t.request);
      const be = gatewayDurationMs(t.backendRequest);
      if (req !== 0 && (be === 0 || be > req)) fail(where, `${at}.timeouts.backendRequest`, `must not be longer than timeouts.request (${t.request}); 0s would disable it`);
    }
  });
}
