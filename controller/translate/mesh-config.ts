// Store -> MeshConfig, the whole mesh at once: what every node agent needs to know, computed from
// Kubernetes-shaped objects. Workloads come from Pods (meshed when their namespace carries
// weft.io/mesh=enabled), services from Services with endpoints from EndpointSlices or, where a Service has
// none (local YAML, the sandbox), from its selector over Pods; each workload's mTLS mode from
// PeerAuthentication (workload selector > namespace > mesh-wide in the root namespace > PERMISSIVE).
//
// The controller itself translates incrementally (incremental.ts); this full translation is the reference
// it is tested against, and what one-shot tools use. Both are built from the same per-object functions
// (objects.ts).
import type { MeshConfig, NodeInfo, Service, Workload } from '../../common/mesh.js';
import type { KubeObject } from '../sources/types.js';
import type { ObjectStore } from '../store/object-store.js';
import { cmp, matches, MtlsIndex, nodeOf, podIsWorkload, serviceOf, sliceServiceKey, workloadOf, type Labels, type PodSpec, type PodStatus, type TranslateOptions } from './objects.js';
import { compilePolicies } from './policy/compile.js';

export type { TranslateOptions } from './objects.js';

export function translate(store: ObjectStore, opts: TranslateOptions, version: number): MeshConfig {
  const nsLabels = new Map<string, Labels>();
  const nsAnnotations = new Map<string, Labels>();
  for (const ns of store.list('Namespace')) {
    nsLabels.set(ns.metadata.name, ns.metadata.labels ?? {});
    nsAnnotations.set(ns.metadata.name, ns.metadata.annotations ?? {});
  }
  const mtls = new MtlsIndex(store.list('PeerAuthentication'), opts.rootNamespace);

  const nodes = new Map<string, NodeInfo>();
  for (const n of store.list('Node')) {
    const info = nodeOf(n);
    if (info) nodes.set(info.name, info);
  }

  const workloads: Workload[] = [];
  // "ns\0key=value" -> pods carrying that label: a selector is matched against the pods of its rarest label
  // only, not every pod of the namespace (10,000 services over 50,000 pods must not be 5e8 comparisons)
  const podsByLabel = new Map<string, KubeObject[]>();
  const podByIp = new Map<string, Workload>();
  const ctx = { opts, nsLabels: (ns: string) => nsLabels.get(ns), nsAnnotations: (ns: string) => nsAnnotations.get(ns), mtls };
  for (const pod of store.list('Pod')) {
    if (!podIsWorkload(pod)) continue;
    const spec = pod.spec as PodSpec;
    const status = pod.status as PodStatus | undefined;
    const ns = pod.metadata.namespace!;
    if (status?.hostIP && !nodes.has(spec.nodeName!)) nodes.set(spec.nodeName!, { name: spec.nodeName!, ip: status.hostIP });
    for (const [k, v] of Object.entries(pod.metadata.labels ?? {})) {
      const lk = `${ns}\0${k}=${v}`;
      const list = podsByLabel.get(lk);
      if (list) list.push(pod);
      else podsByLabel.set(lk, [pod]);
    }
    const w = workloadOf(pod, ctx)!;
    workloads.push(w);
    if (!w.hostNetwork) for (const ip of w.ips) podByIp.set(ip, w);
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
    const key = sliceServiceKey(s)!;
    if (!slicesBySvc.has(key)) slicesBySvc.set(key, []);
    slicesBySvc.get(key)!.push(s);
  }

  const services: Service[] = [];
  for (const svc of store.list('Service')) {
    const slices = slicesBySvc.get(`${svc.metadata.namespace}/${svc.metadata.name}`);
    const selector = (svc.spec as { selector?: Labels }).selector;
    const selected = !slices && selector ? selectPods(svc.metadata.namespace!, selector) : [];
    const s = serviceOf(svc, slices, selected, (ip) => podByIp.get(ip));
    if (s) services.push(s);
  }

  const policies = compilePolicies(store, { trustDomain: opts.trustDomain, rootNamespace: opts.rootNamespace, workloads, services });

  workloads.sort((a, b) => cmp(a.uid, b.uid));
  services.sort((a, b) => cmp(a.namespace, b.namespace) || cmp(a.name, b.name));
  return { version, trustDomain: opts.trustDomain, nodes: [...nodes.values()].sort((a, b) => cmp(a.name, b.name)), workloads, services, policies };
}
