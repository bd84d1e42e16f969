// The pod labels Istio's standard metrics read (canonical service and revision, app, version). The agent
// labels its metrics with them for both ends of a request, so the controller sends these labels for
// workloads on other nodes too (all other labels only to the workload's own node: see
// controller/translate/publisher.ts configFor).

/** In order of precedence: the first one set names the canonical service. */
export const CANONICAL_NAME_LABELS = ['service.istio.io/canonical-name', 'app.kubernetes.io/name', 'app'] as const;
/** In order of precedence: the first one set names the canonical revision. */
export const CANONICAL_REVISION_LABELS = ['service.istio.io/canonical-revision', 'app.kubernetes.io/version', 'version'] as const;

const TELEMETRY_LABEL_KEYS: readonly string[] = [...CANONICAL_NAME_LABELS, ...CANONICAL_REVISION_LABELS];

/** The telemetry labels among a pod's labels (a new object; empty when it has none). */
export function telemetryLabels(labels: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of TELEMETRY_LABEL_KEYS) {
    const v = labels[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}
