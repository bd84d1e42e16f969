// The config stream's wire semantics: MeshConfig <-> ConfigUpdate messages. The controller diffs the
// config a node last ACKed against the one it should have now and sends only what changed (keyed upserts
// and removals); the agent applies the delta on top of the version it ACKed. A snapshot replaces everything.
import type { CompiledPolicy } from '../common/policy.js';
import type { Endpoint, MeshConfig, MtlsMode, NodeInfo, Service, ServicePort, Workload } from '../common/mesh.js';
import type { ConfigUpdate, ConfigUpdate__Output } from './generated/weft/v1/ConfigUpdate.js';
import type { Workload__Output as WireWorkload } from './generated/weft/v1/Workload.js';
import type { Service__Output as WireService } from './generated/weft/v1/Service.js';
import type { PolicyObject__Output as WirePolicy } from './generated/weft/v1/PolicyObject.js';
import { policyFromWire } from './policy-from-wire.js';

export function serviceKey(s: { namespace: string; name: string }): string {
  return `${s.namespace}/${s.name}`;
}

export function policyKey(p: CompiledPolicy): string {
  return p.key;
}

function workloadToWire(w: Workload): WireWorkload {
  return { ...w, labels: { ...w.labels }, portMtls: { ...(w.portMtls ?? {}) }, accessLog: w.accessLog ?? '', failMode: w.failMode ?? '' };
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
    ...(w.portMtls && Object.keys(w.portMtls).length > 0 ? { portMtls: { ...w.portMtls } as Record<string, MtlsMode> } : {}),
    workloadName: w.workloadName,
    ...(w.accessLog === 'json' ? { accessLog: 'json' as const } : {}),
    ...(w.failMode === 'open' ? { failMode: 'open' as const } : {}),
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

/**
 * `prev` with `remove` dropped and `upsert` replacing entries in place (new keys appended): the same result
 * as rebuilding a keyed map of `prev`, but indexed by the changes, which are few next to the 50,000
 * entries of a big mesh (one pass over `prev`, no map of it).
 */
function applyKeyed<T>(prev: T[], upsert: T[], remove: string[], key: (x: T) => string): T[] {
  if (upsert.length === 0 && remove.length === 0) return prev;
  const up = new Map(upsert.map((x) => [key(x), x] as const));
  const gone = new Set(remove);
  const out: T[] = [];
  for (const x of prev) {
    const k = key(x);
    const next = up.get(k);
    if (next !== undefined) {
      out.push(next);
      up.delete(k);
    } else if (!gone.has(k)) out.push(x);
  }
  for (const x of up.values()) out.push(x);
  return out;
}


/** an update's entries converted from the wire (done chunk by chunk as they arrive: see UpdateAssembler) */
export interface ConvertedEntries {
  upsertNodes: NodeInfo[];
  removeNodes: string[];
  upsertWorkloads: Workload[];
  removeWorkloads: string[];
  upsertServices: Service[];
  removeServices: string[];
  upsertPolicies: CompiledPolicy[];
  removePolicies: string[];
}

type UpdateHead = Pick<ConfigUpdate__Output, 'version' | 'snapshot' | 'baseVersion' | 'trustDomain' | 'trustBundlePem'>;

function convert(u: ConfigUpdate__Output, into?: ConvertedEntries): ConvertedEntries {
  const out = into ?? { upsertNodes: [], removeNodes: [], upsertWorkloads: [], removeWorkloads: [], upsertServices: [], removeServices: [], upsertPolicies: [], removePolicies: [] };
  for (const n of u.upsertNodes) out.upsertNodes.push({ name: n.name, ip: n.ip });
  for (const w of u.upsertWorkloads) out.upsertWorkloads.push(workloadFromWire(w));
  for (const s of u.upsertServices) out.upsertServices.push(serviceFromWire(s));
  for (const p of u.upsertPolicies) out.upsertPolicies.push(policyFromWire(p));
  out.removeNodes.push(...u.removeNodes);
  out.removeWorkloads.push(...u.removeWorkloads);
  out.removeServices.push(...u.removeServices);
  out.removePolicies.push(...u.removePolicies);
  return out;
}

/**
 * The config an update produces on top of `base` (the agent's current config). Throws when a delta's base
 * version is not `base.version` or a policy's JSON does not parse: the agent NACKs and keeps `base`.
 */
export function applyUpdate(base: MeshConfig | undefined, u: ConfigUpdate__Output): { config: MeshConfig; trustBundlePem: string } {
  return applyConverted(base, u, convert(u));
}

export function applyConverted(base: MeshConfig | undefined, u: UpdateHead, e: ConvertedEntries): { config: MeshConfig; trustBundlePem: string } {
  if (u.snapshot) {
    return {
      config: { version: u.version, trustDomain: u.trustDomain, nodes: e.upsertNodes, workloads: e.upsertWorkloads, services: e.upsertServices, policies: e.upsertPolicies },
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
      nodes: applyKeyed(base.nodes, e.upsertNodes, e.removeNodes, (n) => n.name),
      workloads: applyKeyed(base.workloads, e.upsertWorkloads, e.removeWorkloads, (w) => w.uid),
      services: applyKeyed(base.services, e.upsertServices, e.removeServices, serviceKey),
      policies: applyKeyed(base.policies, e.upsertPolicies, e.removePolicies, policyKey),
    },
    trustBundlePem: u.trustBundlePem,
  };
}

/**
 * Collects the chunks of one update (ConfigUpdate.more) and converts each as it arrives, so a 10k-Service
 * snapshot is converted in small steps between network reads instead of in one long pause at the end.
 * add() returns the whole update's entries after its last chunk, undefined before. A chunk of a different
 * version than the ones collected starts over (the controller only does that after a reconnect).
 */
export class UpdateAssembler {
  private head: UpdateHead | undefined;
  private entries: ConvertedEntries | undefined;
  private error: unknown;
  chunks = 0;

  add(u: ConfigUpdate__Output): { head: UpdateHead; entries: ConvertedEntries } | undefined {
    if (this.head && (this.head.version !== u.version || this.head.snapshot !== u.snapshot || this.head.baseVersion !== u.baseVersion)) this.reset();
    this.head = u;
    this.chunks++;
    // an entry that does not convert (a policy whose JSON does not parse) fails the whole update, reported
    // once after its last chunk (one NACK per version)
    try {
      if (this.error === undefined) this.entries = convert(u, this.entries);
    } catch (e) {
      this.error = e;
    }
    if (u.more) return undefined;
    const done = { head: u, entries: this.entries! };
    const error = this.error;
    this.reset();
    if (error !== undefined) throw error;
    return done;
  }

  reset(): void {
    this.head = undefined;
    this.entries = undefined;
    this.error = undefined;
    this.chunks = 0;
  }
}
