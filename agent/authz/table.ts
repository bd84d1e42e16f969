// Per config version: for each workload on this node, the AuthorizationPolicies that select it, split by
// action, with their rules prepared for matching (CIDRs as bytes, ports as sets). Built once when a config
// arrives; a decision only reads it. Scope is Istio's: a policy selects the workloads of its namespace
// (all, or those with the selector's labels); in the root namespace it selects across the mesh.
import type { Workload } from '../../common/mesh.js';
import type { AuthzEntry, CompiledPolicy } from '../../common/policy.js';
import type { AuthzAction, CompiledCondition, CompiledOperation, CompiledRule, CompiledSource, StringMatch } from '../../common/policy/authz.js';
import { scopeSelects } from '../../common/policy/authz.js';
import { prepareCidr, type PreparedCidr } from './match.js';

export interface PreparedSource {
  principals?: StringMatch[];
  notPrincipals?: StringMatch[];
  namespaces?: StringMatch[];
  notNamespaces?: StringMatch[];
  serviceAccounts?: ReadonlySet<string>;
  notServiceAccounts?: ReadonlySet<string>;
  ipBlocks?: PreparedCidr[];
  notIpBlocks?: PreparedCidr[];
}

export interface PreparedOperation {
  hosts?: StringMatch[];
  notHosts?: StringMatch[];
  ports?: ReadonlySet<number>;
  notPorts?: ReadonlySet<number>;
  methods?: StringMatch[];
  notMethods?: StringMatch[];
  paths?: StringMatch[];
  notPaths?: StringMatch[];
}

export type PreparedCondition =
  | { key: 'source.principal' | 'source.namespace'; values?: StringMatch[]; notValues?: StringMatch[] }
  | { key: 'source.ip' | 'destination.ip'; values?: PreparedCidr[]; notValues?: PreparedCidr[] }
  | { key: 'destination.port'; values?: ReadonlySet<number>; notValues?: ReadonlySet<number> }
  | { key: 'request.headers'; header: string; values?: StringMatch[]; notValues?: StringMatch[] };

export interface PreparedRule {
  from?: PreparedSource[];
  to?: PreparedOperation[];
  when?: PreparedCondition[];
  /** uses an HTTP-only attribute (methods, paths, hosts or a request header), in any part */
  http: boolean;
}

export interface PreparedPolicy {
  /** "<namespace>/<name>": how logs, metrics and status name it */
  id: string;
  /** the config entry key: AuthorizationPolicy/<ns>/<name> */
  key: string;
  action: AuthzAction;
  dryRun: boolean;
  rules: PreparedRule[] | undefined;
}

/** What one workload is subject to. Enforced policies and dry-run ones are kept apart. */
export interface WorkloadPolicies {
  deny: PreparedPolicy[];
  allow: PreparedPolicy[];
  audit: PreparedPolicy[];
  /** dry-run policies of any action: evaluated as if enforced, only reported */
  dryRun: PreparedPolicy[];
}

const EMPTY: WorkloadPolicies = Object.freeze({ deny: [], allow: [], audit: [], dryRun: [] }) as unknown as WorkloadPolicies;

const set = <T>(xs: readonly T[] | undefined) => (xs ? new Set(xs) : undefined);
const cidrs = (xs: CompiledSource['ipBlocks']) => xs?.map(prepareCidr);

function prepareSource(s: CompiledSource): PreparedSource {
  const out: PreparedSource = {};
  if (s.principals) out.principals = s.principals;
  if (s.notPrincipals) out.notPrincipals = s.notPrincipals;
  if (s.namespaces) out.namespaces = s.namespaces;
  if (s.notNamespaces) out.notNamespaces = s.notNamespaces;
  if (s.serviceAccounts) out.serviceAccounts = set(s.serviceAccounts)!;
  if (s.notServiceAccounts) out.notServiceAccounts = set(s.notServiceAccounts)!;
  if (s.ipBlocks) out.ipBlocks = cidrs(s.ipBlocks)!;
  if (s.notIpBlocks) out.notIpBlocks = cidrs(s.notIpBlocks)!;
  return out;
}

function prepareOperation(o: CompiledOperation): PreparedOperation {
  const { ports, notPorts, ...strings } = o;
  return { ...strings, ...(ports ? { ports: new Set(ports) } : {}), ...(notPorts ? { notPorts: new Set(notPorts) } : {}) };
}

function prepareCondition(c: CompiledCondition): PreparedCondition {
  switch (c.key) {
    case 'source.ip':
    case 'destination.ip':
      return { key: c.key, ...(c.values ? { values: c.values.map(prepareCidr) } : {}), ...(c.notValues ? { notValues: c.notValues.map(prepareCidr) } : {}) };
    case 'destination.port':
      return { key: c.key, ...(c.values ? { values: new Set(c.values) } : {}), ...(c.notValues ? { notValues: new Set(c.notValues) } : {}) };
    default:
      return c;
  }
}

function isHttpOperation(o: CompiledOperation): boolean {
  return !!(o.hosts || o.notHosts || o.methods || o.notMethods || o.paths || o.notPaths);
}

export function prepareRule(r: CompiledRule): PreparedRule {
  const http = (r.to ?? []).some(isHttpOperation) || (r.when ?? []).some((c) => c.key === 'request.headers');
  return {
    ...(r.from ? { from: r.from.map(prepareSource) } : {}),
    ...(r.to ? { to: r.to.map(prepareOperation) } : {}),
    ...(r.when ? { when: r.when.map(prepareCondition) } : {}),
    http,
  };
}

export function preparePolicy(e: AuthzEntry): PreparedPolicy {
  return { id: `${e.namespace}/${e.name}`, key: e.key, action: e.authz.action, dryRun: e.authz.dryRun, rules: e.authz.rules?.map(prepareRule) };
}

function selects(e: AuthzEntry, w: Workload): boolean {
  return scopeSelects(e.authz.scope, w);
}

export class AuthzTable {
  private readonly byUid = new Map<string, WorkloadPolicies>();
  /** every policy entry of the config, prepared (status needs the ones that select nothing here too) */
  readonly policies: ReadonlyMap<string, PreparedPolicy>;

  constructor(
    readonly version: number,
    policies: readonly CompiledPolicy[],
    workloads: readonly Workload[],
  ) {
    const entries = policies.filter((p): p is AuthzEntry => p.kind === 'AuthorizationPolicy');
    const prepared = new Map<string, PreparedPolicy>();
    for (const e of entries) prepared.set(e.key, preparePolicy(e));
    this.policies = prepared;
    for (const w of workloads) {
      let wp: WorkloadPolicies | undefined;
      for (const e of entries) {
        if (!selects(e, w)) continue;
        wp ??= { deny: [], allow: [], audit: [], dryRun: [] };
        const p = prepared.get(e.key)!;
        if (p.dryRun) wp.dryRun.push(p);
        else if (p.action === 'DENY') wp.deny.push(p);
        else if (p.action === 'ALLOW') wp.allow.push(p);
        else wp.audit.push(p);
      }
      if (wp) this.byUid.set(w.uid, wp);
    }
  }

  /** the policies a workload is subject to (empty lists when none select it) */
  forWorkload(uid: string): WorkloadPolicies {
    return this.byUid.get(uid) ?? EMPTY;
  }

  /** uids of the workloads (of those given to the table) a policy selects */
  selectedBy(key: string): string[] {
    const out: string[] = [];
    for (const [uid, wp] of this.byUid) {
      if ([wp.deny, wp.allow, wp.audit, wp.dryRun].some((l) => l.some((p) => p.key === key))) out.push(uid);
    }
    return out;
  }
}
