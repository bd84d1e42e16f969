// `weft analyze`, offline (like `istioctl analyze`): the objects of some YAML files are checked as the
// controller would check them when applied (schema and semantics: an object it would refuse is an Error),
// then translated together as the controller would, to find what no single object shows:
//   WA0101 an HTTPRoute/GRPCRoute whose parent Service does not exist (Accepted false);
//   WA0102 a backendRef that does not resolve (its share is answered with 500);
//   WA0103 two routes attached to one Service with a rule matching the same requests (one silently wins);
//   WA0201 an AuthorizationPolicy or PeerAuthentication that selects no workload;
//   WA0202 a principal that names a service account no pod runs as and no ServiceAccount declares;
//   WA0301 a TrafficPolicy whose target Service does not exist.
// Each finding names the object and the file and line of its document.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LineCounter, parseAllDocuments } from 'yaml';

import { DEFAULT_TRUST_DOMAIN } from '../../common/mesh.js';
import type { KubeObject } from '../sources/types.js';
import { BUILTIN_KINDS, KindRegistry } from '../store/kinds.js';
import { describeObject, ObjectStore } from '../store/object-store.js';
import { translate } from '../translate/mesh-config.js';
import { routeStatuses } from '../translate/policy/route-status.js';

export type Level = 'Error' | 'Warning' | 'Info';
export const LEVELS: Level[] = ['Error', 'Warning', 'Info'];

export interface Finding {
  level: Level;
  code: string;
  /** "Kind namespace/name" */
  object: string;
  /** file:line of the object's document */
  origin: string;
  message: string;
}

interface Located {
  obj: KubeObject;
  origin: string;
}

export interface AnalyzeOptions {
  rootNamespace?: string;
  trustDomain?: string;
}

/** Every *.yaml, *.yml and *.json file under `path` (or `path` itself), in name order. */
export function filesOf(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => (e.isDirectory() ? filesOf(join(path, e.name)) : /\.(ya?ml|json)$/.test(e.name) ? [join(path, e.name)] : []));
}

/** The objects of one file, each with the line its document starts on; YAML syntax errors are findings. */
function readObjects(file: string, text: string, findings: Finding[]): Located[] {
  const lc = new LineCounter();
  const out: Located[] = [];
  for (const doc of parseAllDocuments(text, { lineCounter: lc })) {
    // the line of the object itself (its first key), not of the `---` before it
    const at = `${file}:${lc.linePos(doc.contents?.range?.[0] ?? doc.range[0]).line}`;
    if (doc.errors.length > 0) {
      findings.push({ level: 'Error', code: 'WA0001', object: '-', origin: `${file}:${doc.errors[0]!.linePos?.[0]?.line ?? lc.linePos(doc.range[0]).line}`, message: `not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}` });
      continue;
    }
    const v = doc.toJS() as unknown;
    if (v === null || v === undefined) continue;
    if (typeof v !== 'object' || Array.isArray(v)) {
      findings.push({ level: 'Error', code: 'WA0002', object: '-', origin: at, message: 'a document must be a mapping with apiVersion, kind and metadata' });
      continue;
    }
    const o = v as KubeObject & { items?: unknown[] };
    if (typeof o.kind === 'string' && o.kind.endsWith('List') && Array.isArray(o.items)) for (const item of o.items) out.push({ obj: item as KubeObject, origin: at });
    else out.push({ obj: o, origin: at });
  }
  return out;
}

const key = (kind: string, ns: string | undefined, name: string) => `${kind}/${ns ?? ''}/${name}`;

export function analyze(files: string[], opts: AnalyzeOptions = {}): Finding[] {
  const findings: Finding[] = [];
  const rootNamespace = opts.rootNamespace ?? 'weft-system';
  const trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const located: Located[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (e) {
      findings.push({ level: 'Error', code: 'WA0003', object: '-', origin: f, message: `cannot read: ${(e as Error).message}` });
      continue;
    }
    located.push(...readObjects(f, text, findings));
  }

  // 1. each object as the controller checks it when applied
  const store = new ObjectStore(new KindRegistry(BUILTIN_KINDS));
  const origin = new Map<string, string>();
  for (const { obj, origin: at } of located) {
    try {
      const valid = store.validate(obj);
      store.upsert(valid, 'analyze');
      origin.set(key(valid.kind, valid.metadata.namespace, valid.metadata.name), at);
    } catch (e) {
      findings.push({ level: 'Error', code: 'WA0004', object: describeObject(obj), origin: at, message: (e as Error).message });
    }
  }
  const where = (o: KubeObject) => origin.get(key(o.kind, o.metadata.namespace, o.metadata.name)) ?? '-';
  const name = (o: KubeObject) => describeObject(o);

  // 2. across objects, on the configuration the controller would build
  const config = translate(store, { trustDomain, rootNamespace }, 1);
  for (const r of routeStatuses(store, { trustDomain, rootNamespace, workloads: config.workloads, services: config.services })) {
    const o = store.list(r.kind).find((x) => x.metadata.namespace === r.namespace && x.metadata.name === r.name)!;
    for (const p of r.parents) {
      const accepted = p.conditions.find((c) => c.type === 'Accepted');
      if (accepted?.status === 'False') findings.push({ level: 'Warning', code: 'WA0101', object: name(o), origin: where(o), message: `parent ${p.service}${p.port ? `:${p.port}` : ''}: ${accepted.message}` });
    }
    for (const b of r.unresolvedBackends) findings.push({ level: 'Warning', code: 'WA0102', object: name(o), origin: where(o), message: `${b.field} (${b.service}:${b.port}) does not resolve (${b.reason}): its share of requests is answered with 500` });
  }
  findings.push(...routeConflicts(store.list('HTTPRoute'), where));

  const saKnown = new Set<string>();
  for (const w of config.workloads) saKnown.add(`${w.namespace}/${w.serviceAccount}`);
  for (const sa of store.list('ServiceAccount')) saKnown.add(`${sa.metadata.namespace}/${sa.metadata.name}`);
  for (const kind of ['AuthorizationPolicy', 'PeerAuthentication']) {
    for (const o of store.list(kind)) {
      const ns = o.metadata.namespace!;
      const spec = (o.spec ?? {}) as { selector?: { matchLabels?: Record<string, string> } };
      const meshWide = ns === rootNamespace && !spec.selector;
      const match = spec.selector?.matchLabels ?? {};
      const selected = config.workloads.filter((w) => (meshWide || w.namespace === ns) && Object.entries(match).every(([k, v]) => w.labels[k] === v));
      if (selected.length === 0) findings.push({ level: 'Warning', code: 'WA0201', object: name(o), origin: where(o), message: `selects no workload (${spec.selector ? `selector ${JSON.stringify(match)} in namespace ${ns}` : `namespace ${ns}`}): it has no effect` });
    }
  }
  for (const o of store.list('AuthorizationPolicy')) {
    for (const { field, principal } of principalsOf(o)) {
      const m = /^(?:spiffe:\/\/)?([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(principal);
      if (!m || principal.includes('*')) continue;
      if (m[1] !== trustDomain) findings.push({ level: 'Warning', code: 'WA0202', object: name(o), origin: where(o), message: `${field} "${principal}" is in trust domain ${m[1]}, not ${trustDomain}: it matches no caller` });
      else if (!saKnown.has(`${m[2]}/${m[3]}`)) findings.push({ level: 'Warning', code: 'WA0202', object: name(o), origin: where(o), message: `${field} "${principal}": no pod runs as service account ${m[2]}/${m[3]} and no ServiceAccount declares it` });
    }
  }
  const services = new Set(config.services.map((s) => `${s.namespace}/${s.name}`));
  for (const o of store.list('TrafficPolicy')) {
    const t = (o.spec as { targetRef?: { name?: string } } | undefined)?.targetRef;
    if (t?.name && !services.has(`${o.metadata.namespace}/${t.name}`)) findings.push({ level: 'Warning', code: 'WA0301', object: name(o), origin: where(o), message: `targetRef: there is no Service ${o.metadata.namespace}/${t.name}: the policy applies to nothing` });
  }
  const rank = (l: Level) => LEVELS.indexOf(l);
  return findings.sort((a, b) => rank(a.level) - rank(b.level) || a.origin.localeCompare(b.origin, undefined, { numeric: true }));
}

/** Principals an AuthorizationPolicy names: rules[].from[].source.principals and when source.principal values. */
function principalsOf(o: KubeObject): { field: string; principal: string }[] {
  const out: { field: string; principal: string }[] = [];
  const rules = ((o.spec as { rules?: unknown[] } | undefined)?.rules ?? []) as { from?: { source?: { principals?: string[] } }[]; when?: { key?: string; values?: string[] }[] }[];
  rules.forEach((r, i) => {
    (r.from ?? []).forEach((f, j) => (f.source?.principals ?? []).forEach((p, k) => out.push({ field: `spec.rules[${i}].from[${j}].source.principals[${k}]`, principal: p })));
    (r.when ?? []).forEach((w, j) => {
      if (w.key === 'source.principal') (w.values ?? []).forEach((p, k) => out.push({ field: `spec.rules[${i}].when[${j}].values[${k}]`, principal: p }));
    });
  });
  return out;
}

interface RouteRule {
  matches?: unknown[];
}

/**
 * Rules of different HTTPRoutes on the same parent Service (and port) whose matches are the same: Gateway
 * API merges the routes and gives such a tie to the oldest route, then by name, so the other rule is dead.
 */
function routeConflicts(routes: KubeObject[], where: (o: KubeObject) => string): Finding[] {
  const seen = new Map<string, { route: KubeObject; rule: number }>();
  const out: Finding[] = [];
  const sorted = [...routes].sort((a, b) => String(a.metadata.creationTimestamp ?? '').localeCompare(String(b.metadata.creationTimestamp ?? '')) || `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
  for (const r of sorted) {
    const spec = (r.spec ?? {}) as { parentRefs?: { kind?: string; name?: string; namespace?: string; port?: number }[]; rules?: RouteRule[] };
    for (const p of spec.parentRefs ?? []) {
      if ((p.kind ?? 'Service') !== 'Service' || !p.name) continue;
      const parent = `${p.namespace ?? r.metadata.namespace}/${p.name}:${p.port ?? '*'}`;
      (spec.rules ?? []).forEach((rule, i) => {
        const matches = rule.matches && rule.matches.length > 0 ? rule.matches : [{ path: { type: 'PathPrefix', value: '/' } }];
        for (const m of matches) {
          const k = `${parent}|${canonical(normalMatch(m))}`;
          const first = seen.get(k);
          if (!first) {
            seen.set(k, { route: r, rule: i });
            continue;
          }
          if (first.route === r) continue;
          out.push({ level: 'Warning', code: 'WA0103', object: describeObject(r), origin: where(r), message: `spec.rules[${i}] matches the same requests to Service ${parent.replace(/:\*$/, '')} as ${describeObject(first.route)} spec.rules[${first.rule}], which wins (older, or first by name): this rule is never used` });
        }
      });
    }
  }
  return out;
}

/** Gateway API's defaults made explicit: no path is PathPrefix "/", a path without type is PathPrefix. */
function normalMatch(m: unknown): unknown {
  const x = { ...(m as Record<string, unknown>) };
  const path = (x.path ?? {}) as { type?: string; value?: string };
  x.path = { type: path.type ?? 'PathPrefix', value: path.value ?? '/' };
  return x;
}

/** A match as a string that is the same for equal matches whatever the key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${k}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}
