// Compiled AuthorizationPolicy: Istio's semantics, normalised by the controller so the agent only matches.
// Principals are spiffe:// IDs (or wildcard patterns over them), namespaces and service accounts plain
// names, ip blocks parsed CIDRs, ports numbers, `when` keys typed. Every field Weft cannot enforce was
// refused when the policy was applied (controller/store/semantics/authorization-policy.ts), so nothing in
// here is ever ignored by the agent.

/**
 * Istio's string match: exact, prefix (`abc*`), suffix (`*abc`) or presence (`*`: any non-empty value).
 * `ci`: compare case-insensitively (hosts).
 */
export type StringMatch = { exact: string; ci?: true } | { prefix: string; ci?: true } | { suffix: string; ci?: true } | { presence: true };

/** An address block: `10.1.0.0/16`, or one address as /32 (/128). `addr` is the network address, normalised. */
export interface Cidr {
  family: 4 | 6;
  addr: string;
  bits: number;
}

/** from[].source: every present field must match (Istio ANDs the fields of one source) */
export interface CompiledSource {
  principals?: StringMatch[];
  notPrincipals?: StringMatch[];
  namespaces?: StringMatch[];
  notNamespaces?: StringMatch[];
  /** `ns/sa`, exact (Istio's serviceAccounts) */
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  ipBlocks?: Cidr[];
  notIpBlocks?: Cidr[];
}

/** to[].operation: every present field must match. methods/paths/hosts are HTTP-only. */
export interface CompiledOperation {
  hosts?: StringMatch[];
  notHosts?: StringMatch[];
  ports?: number[];
  notPorts?: number[];
  methods?: StringMatch[];
  notMethods?: StringMatch[];
  paths?: StringMatch[];
  notPaths?: StringMatch[];
}

/** when[]: typed by key; values OR-ed, notValues must all miss. request.headers is HTTP-only. */
export type CompiledCondition =
  | { key: 'source.principal'; values?: StringMatch[]; notValues?: StringMatch[] }
  | { key: 'source.namespace'; values?: StringMatch[]; notValues?: StringMatch[] }
  | { key: 'source.ip'; values?: Cidr[]; notValues?: Cidr[] }
  | { key: 'destination.ip'; values?: Cidr[]; notValues?: Cidr[] }
  | { key: 'destination.port'; values?: number[]; notValues?: number[] }
  | { key: 'request.headers'; header: string; values?: StringMatch[]; notValues?: StringMatch[] };

export interface CompiledRule {
  /** unset: any source; else any one must match */
  from?: CompiledSource[];
  /** unset: any operation; else any one must match */
  to?: CompiledOperation[];
  /** all must hold */
  when?: CompiledCondition[];
}

export type AuthzAction = 'ALLOW' | 'DENY' | 'AUDIT';

export interface AuthzScope {
  /** the policy lives in the root namespace: it applies in every namespace (with or without a selector) */
  meshWide: boolean;
  /** the policy's namespace; unless meshWide, the workloads it selects live here */
  namespace: string;
  /** selector.matchLabels; absent: every workload of the namespace (of the mesh when meshWide) */
  matchLabels?: Record<string, string>;
}

export interface CompiledAuthz {
  action: AuthzAction;
  /** annotation weft.io/dry-run: "true": evaluate and report, never enforce */
  dryRun: boolean;
  scope: AuthzScope;
  /** undefined: the policy has no rules (never matches); [{}] matches everything */
  rules: CompiledRule[] | undefined;
}

/** the HTTP-only attributes: on plain TCP an ALLOW rule using them does not match, a DENY rule ignores them */
export const HTTP_ONLY_OPERATION_FIELDS = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;

export const DRY_RUN_ANNOTATION = 'weft.io/dry-run';

/** Istio's scope: the policy's namespace (every namespace from the root namespace), matchLabels or all. */
export function scopeSelects(s: AuthzScope, w: { namespace: string; labels: Record<string, string> }): boolean {
  if (!s.meshWide && s.namespace !== w.namespace) return false;
  if (s.matchLabels) for (const [k, v] of Object.entries(s.matchLabels)) if (w.labels[k] !== v) return false;
  return true;
}
