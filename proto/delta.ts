// The config stream's wire semantics: MeshConfig <-> ConfigUpdate messages. The controller diffs the
// config a node last ACKed against the one it should have now and sends only what changed (keyed upserts
// and removals); the agent applies the delta on top of the version it ACKed. A snapshot replaces everything.
import type { CompiledPolicy } from '../common/policy.js';
import type { Endpoint, MeshConfig, MtlsMode, NodeInfo, Service, ServicePort, Workload } from '../common/mesh.js';
import type { ConfigUpdate, ConfigUpdate__Output } from './generated/weft/v1/ConfigUpdate.js';
import type { Workload__Output as WireWorkload } from './generated/weft/v1/Workload.js';
import type { Service__Output as WireService } from './generated/weft/v1/Service.js';
import type { PolicyObject__Output as WirePolicy } from './generated/weft/v1/PolicyObject.js';

export function serviceKey(s: { namespace: string; name: string }): string {
  return `${s.namespace}/${s.name}`;
}

export function policyKey(p: CompiledPolicy): string {
  return p.key;
}

function workloadToWire(w: Workload): WireWorkload {
  return { ...w, labels: { ...w.labels } };
}

function workloadFromWire(w: WireWorkload): Workload {
  return {
    uid: w.uid,
    namespace: w.namespace,
    name: w.name,
    serviceAccount: w.serviceAccount,
    node: w.node,
    ips: [...w.ips],
    labels: { ...w.labels },
    meshed: w.meshed,
    hostNetwork: w.hostNetwork,
    mtlsMode: (w.mtlsMode || 'PERMISSIVE') as MtlsMode,
    workloadName: w.workloadName,
  };
}

function serviceToWire(s: Service): WireService {
  return {
    namespace: s.namespace,
    name: s.name,
    clusterIps: [...s.clusterIPs],
    ports: s.ports.map((p) => ({ name: p.name ?? '', port: p.port, targetPort: p.targetPort, protocol: p.protocol, appProtocol: p.appProtocol ?? '' })),
    endpoints: s.endpoints.map((e) => ({ ip: e.ip, node: e.node, workloadUid: e.workloadUid ?? '', ready: e.ready })),
  };
}

function serviceFromWire(s: WireService): Service {
  return {
    namespace: s.namespace,
    name: s.name,
    clusterIPs: [...s.clusterIps],
    ports: s.ports.map((p): ServicePort => ({
      ...(p.name ? { name: p.name } : {}),
      port: p.port,
      targetPort: p.targetPort,
      protocol: (p.protocol || 'TCP') as ServicePort['protocol'],
      ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}),
    })),
    endpoints: s.endpoints.map((e): Endpoint => ({ ip: e.ip, node: e.node, ...(e.workloadUid ? { workloadUid: e.workloadUid } : {}), ready: e.ready })),
  };
}

function policyToWire(p: CompiledPolicy): WirePolicy {
  return { key: policyKey(p), json: JSON.stringify(p) };
}

/**
 * Change detection by JSON (key order is stable: the translator builds these objects). Each config object
 * is serialised once in its life: a config is diffed against many times (once per agent, as base then as
 * target), so the memo turns 50 agents x 60,000 objects into 60,000 serialisations per version.
 */
const serialized = new WeakMap<object, string>();
function json(x: object): string {
  let s = serialized.get(x);
  if (s === undefined) serialized.set(x, (s = JSON.stringify(x)));
  return s;
}
const same = (a: object, b: object) => a === b || json(a) === json(b);

function diffKeyed<T extends object>(prev: T[], next: T[], key: (x: T) => string): { upsert: T[]; remove: string[] } {
  const before = new Map(prev.map((x) => [key(x), x]));
  const upsert: T[] = [];
  const seen = new Set<string>();
  for (const x of next) {
    const k = key(x);
    seen.add(k);
    const old = before.get(k);
    if (!old || !same(old, x)) upsert.push(x);
  }
  const remove = [...before.keys()].filter((k) => !seen.has(k));
  return { upsert, remove };
}

export function snapshotUpdate(cfg: MeshConfig, trustBundlePem: string): ConfigUpdate {
  return {
    version: cfg.version,
    snapshot: true,
    baseVersion: 0,
    trustDomain: cfg.trustDomain,
    trustBundlePem,
    upsertNodes: cfg.nodes,
    removeNodes: [],
    upsertWorkloads: cfg.workloads.map(workloadToWire),
    removeWorkloads: [],
    upsertServices: cfg.services.map(serviceToWire),
    removeServices: [],
    upsertPolicies: cfg.policies.map(policyToWire),
    removePolicies: [],
  };
}

/** The delta from `base` (what the agent ACKed) to `next`; undefined when nothing but the version changed. */
export function deltaUpdate(base: MeshConfig, next: MeshConfig, trustBundlePem: string, baseBundlePem: string): ConfigUpdate | undefined {
  const nodes = diffKeyed(base.nodes, next.nodes, (n) => n.name);
  const workloads = diffKeyed(base.workloads, next.workloads, (w) => w.uid);
  const services = diffKeyed(base.services, next.services, serviceKey);
  const policies = diffKeyed(base.policies, next.policies, policyKey);
  const empty = [nodes, workloads, services, policies].every((d) => d.upsert.length === 0 && d.remove.length === 0);
  if (empty && trustBundlePem === baseBundlePem && base.trustDomain === next.trustDomain) return undefined;
  return {
    version: next.version,
    snapshot: false,
    baseVersion: base.version,
    trustDomain: next.trustDomain,
    trustBundlePem,
    upsertNodes: nodes.upsert,
    removeNodes: nodes.remove,
    upsertWorkloads: workloads.upsert.map(workloadToWire),
    removeWorkloads: workloads.remove,
    upsertServices: services.upsert.map(serviceToWire),
    removeServices: services.remove,
    upsertPolicies: policies.upsert.map(policyToWire),
    removePolicies: policies.remove,
  };
}

export class DeltaBaseMismatchError extends Error {}

function applyKeyed<T>(prev: T[], upsert: T[], remove: string[], key: (x: T) => string): T[] {
  const m = new Map(prev.map((x) => [key(x), x]));
  for (const k of remove) m.delete(k);
  for (const x of upsert) m.set(key(x), x);
  return [...m.values()];
}

function policyFromWire(p: WirePolicy): CompiledPolicy {
  return JSON.parse(p.json) as CompiledPolicy;
}

/**
 * The config an update produces on top of `base` (the agent's current config). Throws when a delta's base
 * version is not `base.version` or a policy's JSON does not parse: the agent NACKs and keeps `base`.
 */
export function applyUpdate(base: MeshConfig | undefined, u: ConfigUpdate__Output): { config: MeshConfig; trustBundlePem: string } {
  if (u.snapshot) {
    return {
      config: {
        version: u.version,
        trustDomain: u.trustDomain,
        nodes: u.upsertNodes.map((n): NodeInfo => ({ name: n.name, ip: n.ip })),
        workloads: u.upsertWorkloads.map(workloadFromWire),
        services: u.upsertServices.map(serviceFromWire),
        policies: u.upsertPolicies.map(policyFromWire),
      },
      trustBundlePem: u.trustBundlePem,
    };
  }
  if (!base || base.version !== u.baseVersion) {
    throw new DeltaBaseMismatchError(`delta to version ${u.version} is based on version ${u.baseVersion} but this agent holds ${base ? base.version : 'no config'}`);
  }
  return {
    config: {
      version: u.version,
      trustDomain: u.trustDomain,
      nodes: applyKeyed(base.nodes, u.upsertNodes.map((n) => ({ name: n.name, ip: n.ip })), u.removeNodes, (n) => n.name),
      workloads: applyKeyed(base.workloads, u.upsertWorkloads.map(workloadFromWire), u.removeWorkloads, (w) => w.uid),
      services: applyKeyed(base.services, u.upsertServices.map(serviceFromWire), u.removeServices, serviceKey),
      policies: applyKeyed(base.policies, u.upsertPolicies.map(policyFromWire), u.removePolicies, policyKey),
    },
    trustBundlePem: u.trustBundlePem,
  };
}
