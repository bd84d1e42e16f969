// The Kubernetes objects the controller reads from its config directory: what an API server would hold
// for this sandbox once everything is scheduled and running. Pods carry their uid, node, IPs and phase;
// Services their ClusterIP; EndpointSlices are derived as the endpoint-slice controller would; Nodes
// carry their underlay address. Weft and Gateway API objects from the spec pass through unchanged.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

import type { KubeObject } from '../controller/sources/types.js';
import { type Plan, type PodPlan, portKey, type ServicePlan } from './plan.js';

export function nodeObjects(plan: Plan): KubeObject[] {
  return plan.nodes.map((n) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name, 'weft.io/sandbox': plan.id } },
    spec: { podCIDR: n.podCIDR, podCIDRs: [n.podCIDR] },
    status: { addresses: [{ type: 'InternalIP', address: n.ip }, { type: 'Hostname', address: n.name }] },
  }));
}

export function podObject(plan: Plan, p: PodPlan): KubeObject {
  const node = plan.nodes.find((n) => n.name === p.node)!;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: p.name,
      namespace: p.namespace,
      uid: p.uid,
      labels: p.labels,
      ...(Object.keys(p.annotations).length ? { annotations: p.annotations } : {}),
      ...(p.owner ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: p.owner.replicaSet, controller: true }] } : {}),
    },
    spec: {
      nodeName: p.node,
      serviceAccountName: p.serviceAccount,
      containers: p.containers.map((c) => ({ name: c.name, command: c.argv, ...(c.ports.length ? { ports: c.ports } : {}) })),
    },
    status: {
      phase: 'Running',
      hostIP: node.ip,
      podIP: p.ip,
      podIPs: [{ ip: p.ip }],
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

export function serviceObject(s: ServicePlan): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: s.name, namespace: s.namespace },
    spec: {
      type: 'ClusterIP',
      clusterIP: s.clusterIP || 'None',
      clusterIPs: s.clusterIP ? [s.clusterIP] : ['None'],
      ...(s.selector ? { selector: s.selector } : {}),
      ports: s.ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.port, targetPort: p.targetPort, protocol: p.protocol, ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}) })),
    },
  };
}

/** One slice per distinct target-port mapping (named ports may resolve differently per pod). */
export function endpointSlices(plan: Plan, s: ServicePlan): KubeObject[] {
  const groups = new Map<string, ServicePlan['endpoints']>();
  for (const e of s.endpoints) {
    const sig = JSON.stringify(s.ports.map((p) => e.ports[portKey(p)] ?? null));
    groups.set(sig, [...(groups.get(sig) ?? []), e]);
  }
  if (groups.size === 0) groups.set('[]', []);
  let i = 0;
  return [...groups.values()].map((eps) => {
    const first = eps[0];
    return {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${s.name}-${++i}`, namespace: s.namespace, labels: { 'kubernetes.io/service-name': s.name } },
      addressType: 'IPv4',
      endpoints: eps.map((e) => {
        const pod = plan.pods.find((p) => `${p.namespace}/${p.name}` === e.pod)!;
        return { addresses: [e.ip], conditions: { ready: true }, nodeName: e.node, targetRef: { kind: 'Pod', namespace: pod.namespace, name: pod.name, uid: pod.uid } };
      }),
      ports: s.ports
        .filter((p) => !first || first.ports[portKey(p)] !== undefined)
        .map((p) => ({ ...(p.name ? { name: p.name } : {}), port: first ? first.ports[portKey(p)]! : (typeof p.targetPort === 'number' ? p.targetPort : p.port), protocol: p.protocol, ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}) })),
    };
  });
}

export function clusterObjects(plan: Plan): Record<string, KubeObject[]> {
  return {
    '00-nodes.yaml': nodeObjects(plan),
    '01-namespaces.yaml': plan.namespaces.map((n) => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: n.name, labels: { 'kubernetes.io/metadata.name': n.name, ...n.labels }, ...(Object.keys(n.annotations).length ? { annotations: n.annotations } : {}) },
    })),
    '02-serviceaccounts.yaml': plan.serviceAccounts.map((s) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: s.name, namespace: s.namespace } })),
    '03-pods.yaml': plan.pods.map((p) => podObject(plan, p)),
    '04-services.yaml': plan.services.map(serviceObject),
    '05-endpointslices.yaml': plan.services.flatMap((s) => endpointSlices(plan, s)),
    '10-policies.yaml': plan.passthrough,
  };
}

/** Writes the controller's config directory (multi-document YAML, one file per kind). */
export function writeConfigDir(dir: string, plan: Plan, include: (kind: string) => boolean = () => true): void {
  mkdirSync(dir, { recursive: true });
  for (const [file, objs] of Object.entries(clusterObjects(plan))) {
    const kept = objs.filter((o) => include(o.kind));
    if (kept.length === 0) continue;
    writeFileSync(join(dir, file), kept.map((o) => stringify(o)).join('---\n'));
  }
}
