// Store -> MeshConfig: what every node agent needs to know, computed from Kubernetes-shaped objects.
// Workloads come from Pods (meshed when their namespace carries weft.io/mesh=enabled), services from
// Services with endpoints from EndpointSlices or, where a Service has none (local YAML, the sandbox), from
// its selector over Pods; each workload's mTLS mode from PeerAuthentication (workload selector > namespace
// > mesh-wide in the root namespace > PERMISSIVE).
import { MESH_NAMESPACE_ENABLED, MESH_NAMESPACE_LABEL } from '../../common/mesh.js';
import type { Endpoint, MeshConfig, MtlsMode, NodeInfo, Service, ServicePort, Workload } from '../../common/mesh.js';
import type { KubeObject } from '../sources/types.js';
import { compilePolicies } from './policy/compile.js';
import type { ObjectStore } from '../store/object-store.js';


export interface TranslateOptions {
  trustDomain: string;
  /** PeerAuthentication here without a selector applies mesh-wide (Istio's root namespace) */
  rootNamespace: string;
}

interface PodSpec {
  nodeName?: string;
  serviceAccountName?: string;
  serviceAccount?: string;
  hostNetwork?: boolean;
  containers?: { ports?: { name?: string; containerPort: number }[] }[];
}
interface PodStatus {
  phase?: string;
  podIP?: string;
  podIPs?: { ip: string }[];
  hostIP?: string;
  conditions?: { type: string; status: string }[];
}

type Labels = Record<string, string>;

function matches(selector: Labels | undefined, labels: Labels): boolean {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

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

function podIps(status: PodStatus | undefined): string[] {
  if (!status) return [];
  const ips = (status.podIPs ?? []).map((p) => p.ip).filter(Boolean);
  if (ips.length === 0 && status.podIP) ips.push(status.podIP);
  return ips;
}

function podReady(status: PodStatus | undefined): boolean {
  if (!status) return true; // local YAML without status: assume the pod serves
  if (status.phase && status.phase !== 'Running') return false;
  const ready = status.conditions?.find((c) => c.type === 'Ready');
  return ready ? ready.status === 'True' : true;
}

function isLive(status: PodStatus | undefined): boolean {
  return status?.phase !== 'Succeeded' && status?.phase !== 'Failed';
}

/** plain code-unit order: deterministic and far cheaper than localeCompare over 50,000 workloads */
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const byName = (a: KubeObject, b: KubeObject) => cmp(a.metadata.name, b.metadata.name);

export function translate(store: ObjectStore, opts: TranslateOptions, version: number): MeshConfig {
  const nsLabels = new Map<string, Labels>();
  for (const ns of store.list('Namespace')) nsLabels.set(ns.metadata.name, ns.metadata.labels ?? {});

  // mTLS mode: index PeerAuthentications by namespace
  // a PeerAuthentication without spec.mtls (only portLevelMtls) leaves the workload-level mode to its parent
  const modeOf = (p: KubeObject) => (p.spec as { mtls?: { mode?: MtlsMode } } | undefined)?.mtls?.mode;
  const selectorOf = (p: KubeObject) => (p.spec as { selector?: { matchLabels?: Labels } } | undefined)?.selector?.matchLabels;
  const peerAuth = store.list('PeerAuthentication').filter((p) => modeOf(p) !== undefined).sort(byName);
  const meshWide = peerAuth.find((p) => p.metadata.namespace === opts.rootNamespace && !selectorOf(p));
  const peerAuthByNs = new Map<string, KubeObject[]>();
  for (const p of peerAuth) peerAuthByNs.set(p.metadata.namespace!, [...(peerAuthByNs.get(p.metadata.namespace!) ?? []), p]);
  const mtlsFor = (ns: string, labels: Labels): MtlsMode => {
    const inNs = peerAuthByNs.get(ns) ?? [];
    const specific = inNs.find((p) => matches(selectorOf(p), labels));
    if (specific) return modeOf(specific)!;
    const nsWide = inNs.find((p) => !selectorOf(p));
    if (nsWide) return modeOf(nsWide)!;
    return meshWide ? modeOf(meshWide)! : 'PERMISSIVE';
  };

  const nodes = new Map<string, NodeInfo>();
  for (const n of store.list('Node')) {
    const addrs = (n.status as { addresses?: { type: string; address: string }[] } | undefined)?.addresses ?? [];
    const ip = addrs.find((a) => a.type === 'InternalIP')?.address ?? addrs[0]?.address;
    if (ip) nodes.set(n.metadata.name, { name: n.metadata.name, ip });
  }

  const workloads: Workload[] = [];
  // "ns\0key=value" -> pods carrying that label: a selector is matched against the pods of its rarest label
  // only, not every pod of the namespace (10,000 services over 50,000 pods must not be 5e8 comparisons)
  const podsByLabel = new Map<string, KubeObject[]>();
  const podByIp = new Map<string, Workload>();
  for (const pod of store.list('Pod')) {
    const spec = pod.spec as PodSpec;
    const status = pod.status as PodStatus | undefined;
    if (!spec.nodeName || !isLive(status)) continue;
    const ns = pod.metadata.namespace!;
    if (status?.hostIP && !nodes.has(spec.nodeName)) nodes.set(spec.nodeName, { name: spec.nodeName, ip: status.hostIP });
    const labels = pod.metadata.labels ?? {};
    for (const [k, v] of Object.entries(labels)) {
      const lk = `${ns}\0${k}=${v}`;
      const list = podsByLabel.get(lk);
      if (list) list.push(pod);
      else podsByLabel.set(lk, [pod]);
    }
    const hostNetwork = spec.hostNetwork === true;
    const own = ns === opts.rootNamespace || labels['app.kubernetes.io/part-of'] === 'weft';
    const w: Workload = {
      uid: pod.metadata.uid ?? `${ns}/${pod.metadata.name}`,
      namespace: ns,
      name: pod.metadata.name,
      serviceAccount: spec.serviceAccountName || spec.serviceAccount || 'default',
      node: spec.nodeName,
      ips: podIps(status),
      labels: { ...labels },
      meshed: nsLabels.get(ns)?.[MESH_NAMESPACE_LABEL] === MESH_NAMESPACE_ENABLED && !hostNetwork && !own,
      hostNetwork,
      mtlsMode: mtlsFor(ns, labels),
      workloadName: workloadNameOf(pod),
    };
    workloads.push(w);
    if (!hostNetwork) for (const ip of w.ips) podByIp.set(ip, w);
  }

  const selectPods = (ns: string, selector: Labels): KubeObject[] => {
    const entries = Object.entries(selector);
    if (entries.length === 0) return []; // an empty selector selects nothing for a Service
    let smallest: KubeObject[] | undefined;
    for (const [k, v] of entries) {
      const list = podsByLabel.get(`${ns}\0${k}=${v}`);
      if (!list) return [];
      if (!smallest || list.length < smallest.length) smallest = list;
    }
    return smallest!.filter((p) => matches(selector, p.metadata.labels ?? {}));
  };

  const slicesBySvc = new Map<string, KubeObject[]>();
  for (const s of store.list('EndpointSlice')) {
    const key = `${s.metadata.namespace}/${s.metadata.labels!['kubernetes.io/service-name']}`;
    if (!slicesBySvc.has(key)) slicesBySvc.set(key, []);
    slicesBySvc.get(key)!.push(s);
  }

  const services: Service[] = [];
  for (const svc of store.list('Service')) {
    const ns = svc.metadata.namespace!;
    const spec = svc.spec as {
      clusterIP?: string;
      clusterIPs?: string[];
      selector?: Labels;
      type?: string;
      ports: { name?: string; port: number; targetPort?: number | string; protocol?: ServicePort['protocol']; appProtocol?: string }[];
    };
    if (spec.type === 'ExternalName') continue;
    const clusterIPs = (spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : [])).filter((ip) => ip && ip !== 'None');
    const slices = slicesBySvc.get(`${ns}/${svc.metadata.name}`);
    const selected = !slices && spec.selector ? selectPods(ns, spec.selector) : [];
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
        for (const e of (s.endpoints as { addresses: string[]; nodeName?: string; conditions?: { ready?: boolean }; targetRef?: { kind?: string; uid?: string } }[]) ?? []) {
          for (const ip of e.addresses) {
            const pod = podByIp.get(ip);
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
    services.push({ namespace: ns, name: svc.metadata.name, clusterIPs, ports, endpoints });
  }

  const policies = compilePolicies(store, { trustDomain: opts.trustDomain, rootNamespace: opts.rootNamespace, workloads, services });

  workloads.sort((a, b) => cmp(a.uid, b.uid));
  services.sort((a, b) => cmp(a.namespace, b.namespace) || cmp(a.name, b.name));
  return { version, trustDomain: opts.trustDomain, nodes: [...nodes.values()].sort((a, b) => cmp(a.name, b.name)), workloads, services, policies };
}
