// One Kubernetes object -> its piece of the MeshConfig: Pod -> Workload, Service (+ its EndpointSlices or
// selected Pods) -> Service, Node -> NodeInfo, PeerAuthentications -> each workload's mTLS mode. Pure
// functions shared by the full translation (mesh-config.ts, the reference) and the incremental one
// (incremental.ts), so both give the same objects for the same inputs.
import { ACCESS_LOG_ANNOTATION, FAIL_MODE_ANNOTATION, MESH_NAMESPACE_ENABLED, MESH_NAMESPACE_LABEL } from '../../common/mesh.js';
import type { Endpoint, MtlsMode, NodeInfo, Service, ServicePort, Workload } from '../../common/mesh.js';
import type { KubeObject } from '../sources/types.js';

export interface TranslateOptions {
  trustDomain: string;
  /** PeerAuthentication here without a selector applies mesh-wide (Istio's root namespace) */
  rootNamespace: string;
}

export interface PodSpec {
  nodeName?: string;
  serviceAccountName?: string;
  serviceAccount?: string;
  hostNetwork?: boolean;
  containers?: { ports?: { name?: string; containerPort: number }[] }[];
}
export interface PodStatus {
  phase?: string;
  podIP?: string;
  podIPs?: { ip: string }[];
  hostIP?: string;
  conditions?: { type: string; status: string }[];
}

export type Labels = Record<string, string>;

export function matches(selector: Labels | undefined, labels: Labels): boolean {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

/** plain code-unit order: deterministic and far cheaper than localeCompare over 50,000 workloads */
export const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Deployment-style name: the ReplicaSet owner minus its pod-template-hash, else the owner, else app labels. */
function workloadNameOf(pod: KubeObject): string {
  const owners = (pod.metadata.ownerReferences as { kind?: string; name?: string }[] | undefined) ?? [];
  const hash = pod.metadata.labels?.['pod-template-hash'];
  const owner = owners.find((o) => o.name);
  if (owner?.name) {
    if (owner.kind === 'ReplicaSet' && hash && owner.name.endsWith(`-${hash}`)) return owner.name.slice(0, -hash.length - 1);
    return owner.name;
  }
  const l = pod.metadata.labels ?? {};
  return l['app.kubernetes.io/name'] ?? l['app'] ?? pod.metadata.name;
}

export function podIps(status: PodStatus | undefined): string[] {
  if (!status) return [];
  const ips = (status.podIPs ?? []).map((p) => p.ip).filter(Boolean);
  if (ips.length === 0 && status.podIP) ips.push(status.podIP);
  return ips;
}

export function podReady(status: PodStatus | undefined): boolean {
  if (!status) return true; // local YAML without status: assume the pod serves
  if (status.phase && status.phase !== 'Running') return false;
  const ready = status.conditions?.find((c) => c.type === 'Ready');
  return ready ? ready.status === 'True' : true;
}

/** a pod that is scheduled and not finished: it becomes a workload */
export function podIsWorkload(pod: KubeObject): boolean {
  const status = pod.status as PodStatus | undefined;
  return !!(pod.spec as PodSpec | undefined)?.nodeName && status?.phase !== 'Succeeded' && status?.phase !== 'Failed';
}

/**
 * PeerAuthentication precedence: workload selector > namespace-wide > mesh-wide (root namespace) > PERMISSIVE.
 * A selector policy without spec.mtls (only portLevelMtls) leaves the workload-level mode to its parent; its
 * port-level modes still apply to the workloads it selects (Istio).
 */
export class MtlsIndex {
  private readonly byNs = new Map<string, KubeObject[]>();
  private readonly meshWide: KubeObject | undefined;

  constructor(peerAuthentications: KubeObject[], rootNamespace: string) {
    const sorted = [...peerAuthentications].sort((a, b) => cmp(a.metadata.name, b.metadata.name));
    this.meshWide = sorted.find((p) => p.metadata.namespace === rootNamespace && !selectorOf(p) && modeOf(p) !== undefined);
    for (const p of sorted) this.byNs.set(p.metadata.namespace!, [...(this.byNs.get(p.metadata.namespace!) ?? []), p]);
  }

  modeFor(ns: string, labels: Labels): MtlsMode {
    return this.resolve(ns, labels).mode;
  }

  /** the workload's mode and, from its own (selector) policy, the ports whose mode is set per port */
  resolve(ns: string, labels: Labels): { mode: MtlsMode; ports?: Record<string, MtlsMode> } {
    const inNs = this.byNs.get(ns) ?? [];
    const specific = inNs.find((p) => matches(selectorOf(p), labels));
    const nsWide = inNs.find((p) => !selectorOf(p) && modeOf(p) !== undefined);
    const mode = (specific && modeOf(specific)) ?? (nsWide && modeOf(nsWide)) ?? (this.meshWide && modeOf(this.meshWide)) ?? 'PERMISSIVE';
    const levels = specific ? portLevelOf(specific) : undefined;
    if (!levels || Object.keys(levels).length === 0) return { mode };
    const ports: Record<string, MtlsMode> = {};
    for (const [port, v] of Object.entries(levels)) ports[port] = v.mode;
    return { mode, ports };
  }
}
const modeOf = (p: KubeObject) => (p.spec as { mtls?: { mode?: MtlsMode } } | undefined)?.mtls?.mode;
const selectorOf = (p: KubeObject) => (p.spec as { selector?: { matchLabels?: Labels } } | undefined)?.selector?.matchLabels;
const portLevelOf = (p: KubeObject) => (p.spec as { portLevelMtls?: Record<string, { mode: MtlsMode }> } | undefined)?.portLevelMtls;

export interface WorkloadContext {
  opts: TranslateOptions;
  nsLabels(ns: string): Labels | undefined;
  nsAnnotations(ns: string): Labels | undefined;
  mtls: MtlsIndex;
}

/** Pod -> Workload; undefined when the pod is not (yet or any more) a workload */
export function workloadOf(pod: KubeObject, ctx: WorkloadContext): Workload | undefined {
  if (!podIsWorkload(pod)) return undefined;
  const spec = pod.spec as PodSpec;
  const status = pod.status as PodStatus | undefined;
  const ns = pod.metadata.namespace!;
  const labels = pod.metadata.labels ?? {};
  const hostNetwork = spec.hostNetwork === true;
  const own = ns === ctx.opts.rootNamespace || labels['app.kubernetes.io/part-of'] === 'weft';
  const mtls = ctx.mtls.resolve(ns, labels);
  return {
    uid: pod.metadata.uid ?? `${ns}/${pod.metadata.name}`,
    namespace: ns,
    name: pod.metadata.name,
    serviceAccount: spec.serviceAccountName || spec.serviceAccount || 'default',
    node: spec.nodeName!,
    ips: podIps(status),
    labels: { ...labels },
    meshed: ctx.nsLabels(ns)?.[MESH_NAMESPACE_LABEL] === MESH_NAMESPACE_ENABLED && !hostNetwork && !own,
    hostNetwork,
    mtlsMode: mtls.mode,
    ...(mtls.ports ? { portMtls: mtls.ports } : {}),
    workloadName: workloadNameOf(pod),
    ...(accessLogOf(pod.metadata.annotations, ctx.nsAnnotations(ns)) ? { accessLog: 'json' as const } : {}),
    ...(ctx.nsAnnotations(ns)?.[FAIL_MODE_ANNOTATION] === 'open' ? { failMode: 'open' as const } : {}),
  };
}

/** The Pod's weft.io/access-log annotation, else its Namespace's (values checked when applied: json, off). */
function accessLogOf(pod: Labels | undefined, ns: Labels | undefined): boolean {
  return (pod?.[ACCESS_LOG_ANNOTATION] ?? ns?.[ACCESS_LOG_ANNOTATION]) === 'json';
}

/** Node -> NodeInfo (its InternalIP, else its first address); undefined without an address */
export function nodeOf(n: KubeObject): NodeInfo | undefined {
  const addrs = (n.status as { addresses?: { type: string; address: string }[] } | undefined)?.addresses ?? [];
  const ip = addrs.find((a) => a.type === 'InternalIP')?.address ?? addrs[0]?.address;
  return ip ? { name: n.metadata.name, ip } : undefined;
}

interface ServiceSpec {
  clusterIP?: string;
  clusterIPs?: string[];
  selector?: Labels;
  type?: string;
  ports: { name?: string; port: number; targetPort?: number | string; protocol?: ServicePort['protocol']; appProtocol?: string }[];
}

export function serviceSelector(svc: KubeObject): Labels | undefined {
  return (svc.spec as ServiceSpec).selector;
}

export interface SliceEndpoint {
  addresses: string[];
  nodeName?: string;
  conditions?: { ready?: boolean };
  targetRef?: { kind?: string; uid?: string };
}

export function sliceEndpoints(s: KubeObject): SliceEndpoint[] {
  return (s.endpoints as SliceEndpoint[] | undefined) ?? [];
}

/** the Service an EndpointSlice belongs to ("ns/name"), from its kubernetes.io/service-name label */
export function sliceServiceKey(s: KubeObject): string | undefined {
  const name = s.metadata.labels?.['kubernetes.io/service-name'];
  return name ? `${s.metadata.namespace}/${name}` : undefined;
}

/**
 * Service -> Service. Endpoints come from its EndpointSlices when it has any (`slices` defined), else from
 * its selector over pods (`selected`). `podByIp` fills node and workload uid a slice endpoint does not name.
 */
export function serviceOf(svc: KubeObject, slices: KubeObject[] | undefined, selected: KubeObject[], podByIp: (ip: string) => Workload | undefined): Service | undefined {
  const ns = svc.metadata.namespace!;
  const spec = svc.spec as ServiceSpec;
  if (spec.type === 'ExternalName') return undefined;
  const clusterIPs = (spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : [])).filter((ip) => ip && ip !== 'None');
  const ports: ServicePort[] = spec.ports.map((p) => {
    let target = typeof p.targetPort === 'number' ? p.targetPort : p.port;
    if (typeof p.targetPort === 'string') {
      const fromSlice = slices?.flatMap((s) => (s.ports as { name?: string; port?: number }[] | undefined) ?? []).find((sp) => sp.name === p.name && sp.port);
      const fromPod = selected
        .flatMap((pod) => (pod.spec as PodSpec).containers ?? [])
        .flatMap((c) => c.ports ?? [])
        .find((cp) => cp.name === p.targetPort);
      target = fromSlice?.port ?? fromPod?.containerPort ?? (/^\d+$/.test(p.targetPort) ? Number(p.targetPort) : p.port);
    }
    return { ...(p.name ? { name: p.name } : {}), port: p.port, targetPort: target, protocol: p.protocol ?? 'TCP', ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}) };
  });
  const endpoints: Endpoint[] = [];
  if (slices) {
    for (const s of slices) {
      for (const e of sliceEndpoints(s)) {
        for (const ip of e.addresses) {
          const pod = podByIp(ip);
          const uid = e.targetRef?.kind === 'Pod' && e.targetRef.uid ? e.targetRef.uid : pod?.uid;
          endpoints.push({ ip, node: e.nodeName ?? pod?.node ?? '', ...(uid ? { workloadUid: uid } : {}), ready: e.conditions?.ready ?? true });
        }
      }
    }
  } else {
    for (const pod of selected) {
      const status = pod.status as PodStatus | undefined;
      const uid = pod.metadata.uid ?? `${ns}/${pod.metadata.name}`;
      for (const ip of podIps(status)) endpoints.push({ ip, node: (pod.spec as PodSpec).nodeName!, workloadUid: uid, ready: podReady(status) });
    }
  }
  endpoints.sort((a, b) => cmp(a.ip, b.ip));
  return { namespace: ns, name: svc.metadata.name, clusterIPs, ports, endpoints };
}
