// Istio's AuthorizationPolicy evaluation, pure: any matching DENY denies; else, when no ALLOW policy selects
// the workload, allow; else a matching ALLOW allows; else deny. AUDIT policies never change the decision,
// they are reported. Dry-run policies are evaluated as if they were enforced and reported as the "shadow"
// decision, never applied.
//
// A rule matches when every part present matches: any `from` source, any `to` operation, every `when`
// condition. Within a source or an operation every field present must match. `rules` unset matches nothing;
// an empty rule ({}) matches everything.
//
// Plain TCP (no request) and HTTP-only attributes (methods, paths, hosts, request headers): as Istio does for
// TCP, an ALLOW (or AUDIT) rule that uses any of them does not match, while a DENY rule is evaluated
// without them, so "deny paths /admin" on a TCP port denies the connection (fail closed).
import { addressBytes, inAnyCidr, matchAny } from './match.js';
import type { PreparedCondition, PreparedOperation, PreparedPolicy, PreparedRule, PreparedSource, WorkloadPolicies } from './table.js';

export interface HttpAttributes {
  method: string;
  /** the request path without the query string */
  path: string;
  /** :authority / Host */
  host: string;
  /** a header's value (lower-case name); several values joined with "," */
  header(name: string): string | undefined;
}

export interface AuthzInput {
  /** spiffe:// ID of the peer, only when proven (mTLS or the kernel's cgroup id for a pod on this node) */
  principal: string | undefined;
  /** the source address as the destination sees it */
  sourceIp: string | undefined;
  destinationIp: string;
  destinationPort: number;
  /** present for a request; absent for a plain TCP connection */
  http?: HttpAttributes;
}

export type DecisionReason = 'no_policy' | 'denied_by_policy' | 'allowed_by_policy' | 'no_allow_matched';

export interface Verdict {
  allow: boolean;
  reason: DecisionReason;
  /** "<ns>/<name>" of the policy that decided (the matching DENY or ALLOW); absent for no_policy / no_allow_matched */
  policy?: string;
}

export interface AuthzDecision extends Verdict {
  /** AUDIT policies that matched */
  audited: string[];
  /** when dry-run policies select the workload: the decision had they been enforced */
  dryRun?: Verdict;
}

/** The attributes derived once per input, shared by every rule; addresses parsed only if a rule needs them. */
class Derived {
  private srcBytes: Uint8Array | undefined | null = null;
  private dstBytes: Uint8Array | undefined | null = null;
  readonly namespace: string | undefined;
  readonly serviceAccount: string | undefined;

  constructor(readonly in_: AuthzInput) {
    const id = identityParts(in_.principal);
    this.namespace = id.namespace;
    this.serviceAccount = id.serviceAccount;
  }

  get in(): AuthzInput {
    return this.in_;
  }

  get src(): Uint8Array | undefined {
    if (this.srcBytes === null) this.srcBytes = this.in_.sourceIp ? addressBytes(this.in_.sourceIp) : undefined;
    return this.srcBytes;
  }

  get dst(): Uint8Array | undefined {
    if (this.dstBytes === null) this.dstBytes = addressBytes(this.in_.destinationIp);
    return this.dstBytes;
  }
}

const NO_IDENTITY: { namespace?: string; serviceAccount?: string } = Object.freeze({});
/** a node sees few identities: parse each once (bounded, cleared when full) */
const identities = new Map<string, { namespace?: string; serviceAccount?: string }>();

/** spiffe://td/ns/NS/sa/SA -> NS, NS/SA */
function identityParts(principal: string | undefined): { namespace?: string; serviceAccount?: string } {
  if (!principal) return NO_IDENTITY;
  let p = identities.get(principal);
  if (p) return p;
  const m = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(principal);
  p = m ? { namespace: m[1]!, serviceAccount: `${m[1]}/${m[2]}` } : NO_IDENTITY;
  if (identities.size >= 4096) identities.clear();
  identities.set(principal, p);
  return p;
}

export function derive(input: AuthzInput): Derived {
  return new Derived(input);
}

function sourceMatches(s: PreparedSource, d: Derived): boolean {
  const p = d.in.principal;
  if (s.principals && !matchAny(s.principals, p)) return false;
  if (s.notPrincipals && matchAny(s.notPrincipals, p)) return false;
  if (s.namespaces && !matchAny(s.namespaces, d.namespace)) return false;
  if (s.notNamespaces && matchAny(s.notNamespaces, d.namespace)) return false;
  if (s.serviceAccounts && !(d.serviceAccount !== undefined && s.serviceAccounts.has(d.serviceAccount))) return false;
  if (s.notServiceAccounts && d.serviceAccount !== undefined && s.notServiceAccounts.has(d.serviceAccount)) return false;
  if (s.ipBlocks && !inAnyCidr(s.ipBlocks, d.src)) return false;
  if (s.notIpBlocks && inAnyCidr(s.notIpBlocks, d.src)) return false;
  return true;
}

/** the host without a port (patterns name hosts; Istio matches "host" and "host:*" alike) */
function hostOnly(h: string): string {
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const c = h.lastIndexOf(':');
  return c > 0 && h.indexOf(':') === c ? h.slice(0, c) : h;
}

/** `lenient`: no request, DENY semantics: HTTP-only fields are left out (they count as matching) */
function operationMatches(o: PreparedOperation, d: Derived, lenient: boolean): boolean {
  const port = d.in.destinationPort;
  if (o.ports && !o.ports.has(port)) return false;
  if (o.notPorts && o.notPorts.has(port)) return false;
  const h = d.in.http;
  if (!h) return lenient; // non-lenient callers never get here with HTTP fields on TCP (rule.http)
  if (o.methods && !matchAny(o.methods, h.method)) return false;
  if (o.notMethods && matchAny(o.notMethods, h.method)) return false;
  if (o.paths && !matchAny(o.paths, h.path)) return false;
  if (o.notPaths && matchAny(o.notPaths, h.path)) return false;
  if (o.hosts || o.notHosts) {
    const host = hostOnly(h.host);
    if (o.hosts && !matchAny(o.hosts, host) && !matchAny(o.hosts, h.host)) return false;
    if (o.notHosts && (matchAny(o.notHosts, host) || matchAny(o.notHosts, h.host))) return false;
  }
  return true;
}

function conditionMatches(c: PreparedCondition, d: Derived): boolean {
  switch (c.key) {
    case 'source.principal':
      return (!c.values || matchAny(c.values, d.in.principal)) && !(c.notValues && matchAny(c.notValues, d.in.principal));
    case 'source.namespace':
      return (!c.values || matchAny(c.values, d.namespace)) && !(c.notValues && matchAny(c.notValues, d.namespace));
    case 'source.ip':
      return (!c.values || inAnyCidr(c.values, d.src)) && !(c.notValues && inAnyCidr(c.notValues, d.src));
    case 'destination.ip':
      return (!c.values || inAnyCidr(c.values, d.dst)) && !(c.notValues && inAnyCidr(c.notValues, d.dst));
    case 'destination.port':
      return (!c.values || c.values.has(d.in.destinationPort)) && !(c.notValues && c.notValues.has(d.in.destinationPort));
    case 'request.headers': {
      const h = d.in.http;
      if (!h) return true; // only reached for DENY on TCP: HTTP-only conditions are left out
      const v = h.header(c.header);
      return (!c.values || matchAny(c.values, v)) && !(c.notValues && matchAny(c.notValues, v));
    }
  }
}

export function ruleMatches(r: PreparedRule, d: Derived, action: PreparedPolicy['action']): boolean {
  const tcp = !d.in.http;
  if (tcp && r.http && action !== 'DENY') return false;
  if (r.from) {
    let any = false;
    for (const s of r.from) if (sourceMatches(s, d)) { any = true; break; }
    if (!any) return false;
  }
  if (r.to) {
    let any = false;
    for (const o of r.to) if (operationMatches(o, d, true)) { any = true; break; }
    if (!any) return false;
  }
  if (r.when) for (const c of r.when) if (!conditionMatches(c, d)) return false;
  return true;
}

export function policyMatches(p: PreparedPolicy, d: Derived): boolean {
  if (!p.rules) return false;
  for (const r of p.rules) if (ruleMatches(r, d, p.action)) return true;
  return false;
}

function verdict(deny: readonly PreparedPolicy[], allow: readonly PreparedPolicy[], d: Derived): Verdict {
  for (const p of deny) if (policyMatches(p, d)) return { allow: false, reason: 'denied_by_policy', policy: p.id };
  if (allow.length === 0) return { allow: true, reason: 'no_policy' };
  for (const p of allow) if (policyMatches(p, d)) return { allow: true, reason: 'allowed_by_policy', policy: p.id };
  return { allow: false, reason: 'no_allow_matched' };
}

const NO_POLICY: AuthzDecision = Object.freeze({ allow: true, reason: 'no_policy', audited: Object.freeze([]) as unknown as string[] }) as AuthzDecision;

export function evaluate(wp: WorkloadPolicies, input: AuthzInput): AuthzDecision {
  // the common case: nothing selects the workload
  if (wp.deny.length === 0 && wp.allow.length === 0 && wp.audit.length === 0 && wp.dryRun.length === 0) return NO_POLICY;
  const d = derive(input);
  const v = verdict(wp.deny, wp.allow, d);
  const audited: string[] = [];
  for (const p of wp.audit) if (policyMatches(p, d)) audited.push(p.id);
  const out: AuthzDecision = { ...v, audited };
  if (wp.dryRun.length > 0) {
    const deny = [...wp.deny, ...wp.dryRun.filter((p) => p.action === 'DENY')];
    const allow = [...wp.allow, ...wp.dryRun.filter((p) => p.action === 'ALLOW')];
    out.dryRun = verdict(deny, allow, d);
    for (const p of wp.dryRun) if (p.action === 'AUDIT' && policyMatches(p, d)) audited.push(`${p.id} (dry-run)`);
  }
  return out;
}
