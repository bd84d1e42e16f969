// Compiled AuthorizationPolicy (issue 11 owns and refines this shape). Istio semantics, normalised by the
// controller: principals as spiffe:// IDs, the selector resolved, durations and ports as numbers.
export interface CompiledAuthz {
  action: 'ALLOW' | 'DENY' | 'AUDIT';
  /** annotation weft.io/dry-run: evaluate and report, never enforce */
  dryRun: boolean;
  /** who it applies to: a namespace (with optional matchLabels), or the whole mesh (root namespace) */
  scope: { meshWide: boolean; namespace: string; matchLabels?: Record<string, string> };
  /** undefined: the policy has no rules (never matches); [] cannot happen; [{}] matches everything */
  rules: unknown[] | undefined;
}
