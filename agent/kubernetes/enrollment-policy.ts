// Which pods on this node Weft captures. One rule, shared by the pod source and its tests: a pod is
// enrolled when its namespace carries weft.io/mesh=enabled, it does not use the host network (its sockets
// are the node's: capturing them would capture the node), it is not Weft's own (the agent and controller
// must never be redirected into themselves), and it is still running on this node.
import { MESH_NAMESPACE_ENABLED, MESH_NAMESPACE_LABEL } from '../../common/mesh.js';
import { QOS_CLASSES, type QosClass } from './kubepods-layout.js';

/** The fields of a v1 Pod the agent reads (a structural subset of @kubernetes/client-node's V1Pod). */
export interface PodLike {
  metadata?: { uid?: string; name?: string; namespace?: string; labels?: Record<string, string>; deletionTimestamp?: unknown };
  spec?: { nodeName?: string; hostNetwork?: boolean; serviceAccountName?: string };
  status?: { phase?: string; qosClass?: string; podIP?: string; podIPs?: { ip: string }[] };
}

export interface NamespaceLike {
  metadata?: { name?: string; labels?: Record<string, string> };
}

/** An enrolled pod, as the enroller and capture need it. */
export interface NodePod {
  uid: string;
  namespace: string;
  name: string;
  serviceAccount: string;
  qos: QosClass | undefined;
  ips: string[];
}

export const WEFT_SYSTEM_NAMESPACE = 'weft-system';

export type EnrollmentDecision = { enroll: true; pod: NodePod } | { enroll: false; reason: string };

export interface PolicyContext {
  nodeName: string;
  /** Weft's own namespace (weft-system), never captured */
  systemNamespace: string;
  /** labels of the pod's namespace; undefined while the namespace is not known (yet) */
  namespaceLabels: Record<string, string> | undefined;
}

export function enrollmentDecision(pod: PodLike, ctx: PolicyContext): EnrollmentDecision {
  const uid = pod.metadata?.uid;
  const ns = pod.metadata?.namespace;
  const name = pod.metadata?.name;
  if (!uid || !ns || !name) return { enroll: false, reason: 'incomplete pod object (no uid, namespace or name)' };
  if (pod.spec?.nodeName !== ctx.nodeName) return { enroll: false, reason: `runs on node ${pod.spec?.nodeName ?? '(unscheduled)'}, not ${ctx.nodeName}` };
  if (ns === ctx.systemNamespace) return { enroll: false, reason: `Weft's own namespace ${ctx.systemNamespace}` };
  if (pod.spec?.hostNetwork === true) return { enroll: false, reason: 'host-network pod' };
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return { enroll: false, reason: `pod has finished (${phase})` };
  if (ctx.namespaceLabels === undefined) return { enroll: false, reason: `namespace ${ns} not known yet` };
  if (ctx.namespaceLabels[MESH_NAMESPACE_LABEL] !== MESH_NAMESPACE_ENABLED) {
    return { enroll: false, reason: `namespace ${ns} is not labelled ${MESH_NAMESPACE_LABEL}=${MESH_NAMESPACE_ENABLED}` };
  }
  const qos = QOS_CLASSES.find((q) => q === pod.status?.qosClass);
  const ips = pod.status?.podIPs?.map((p) => p.ip) ?? (pod.status?.podIP ? [pod.status.podIP] : []);
  return { enroll: true, pod: { uid, namespace: ns, name, serviceAccount: pod.spec?.serviceAccountName ?? 'default', qos, ips } };
}
