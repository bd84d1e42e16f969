// What Istio's dashboards and Kiali group a workload by, derived from its pod labels the way Istio's proxies
// derive them (docs/operators.md, "Labels decided for the agents' metrics"). Computed when a label set is
// built (once per source/destination pair and config version), never per request.
import type { Workload } from '../../common/mesh.js';
import { CANONICAL_NAME_LABELS, CANONICAL_REVISION_LABELS } from '../../common/telemetry-labels.js';

export const UNKNOWN = 'unknown';
/** Istio's cluster name when none is configured (global.multiCluster.clusterName); Weft is one cluster. */
export const CLUSTER_NAME = 'Kubernetes';
const LATEST = 'latest';


export interface WorkloadLabels {
  canonicalService: string;
  canonicalRevision: string;
  /** the pod's `app` label (Istio's source_app/destination_app) */
  app: string;
  /** the pod's `version` label */
  version: string;
  cluster: string;
}

/** A workload known only by its name (a peer's baggage): no pod labels to read. */
export type NamedWorkload = Pick<Workload, 'workloadName'> & { labels?: Record<string, string> };

function first(labels: Record<string, string> | undefined, keys: readonly string[]): string | undefined {
  if (!labels) return undefined;
  for (const k of keys) {
    const v = labels[k];
    if (v) return v;
  }
  return undefined;
}

export function workloadLabels(w: NamedWorkload | undefined): WorkloadLabels {
  // Istio's own proxies report an unknown peer's revision as "latest" too.
  if (!w) return { canonicalService: UNKNOWN, canonicalRevision: LATEST, app: UNKNOWN, version: UNKNOWN, cluster: UNKNOWN };
  const l = w.labels;
  return {
    // each field falls back on its own: a pod may set a canonical name and leave the revision to `version`
    canonicalService: first(l, CANONICAL_NAME_LABELS) ?? w.workloadName,
    canonicalRevision: first(l, CANONICAL_REVISION_LABELS) ?? LATEST,
    app: l?.['app'] || UNKNOWN,
    version: l?.['version'] || UNKNOWN,
    cluster: CLUSTER_NAME,
  };
}

/** destination_service_name / _namespace from the Service's host `<name>.<namespace>.svc.<trust domain>`. */
export function serviceNameOf(host: string): { name: string; namespace: string } {
  const m = /^([^.]+)\.([^.]+)\.svc(?:\.|$)/.exec(host);
  return m ? { name: m[1]!, namespace: m[2]! } : { name: host, namespace: UNKNOWN };
}
