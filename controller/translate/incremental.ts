// Incremental Store -> MeshConfig translation. The translator keeps the translated mesh (workloads by uid,
// services by "ns/name", compiled policy entries by key, nodes) and the indexes that say what depends on
// what; a store change only marks objects dirty, and build() recomputes those and whatever depends on
// them, then reports exactly which entries changed. It never rebuilds the whole mesh for a change.
//
// Dependencies (what a change recomputes):
//   Pod            its workload; Services selecting it (old or new labels, selector-based Services); Services
//                  whose EndpointSlices list its old or new IPs (node/uid filled from the pod)
//   EndpointSlice  the Service it names (old and new kubernetes.io/service-name)
//   Service        itself
//   Namespace      the workloads of that namespace (meshed flag)
//   PeerAuthentication  the workloads of its namespace, every workload when in the root namespace
//   Node           the node list
//   policy kinds   that object's entries; an entry is also recompiled when a workload or Service changed in a
//                  namespace the object names (its own, or any `namespace:` in its spec), and always when it
//                  is in the root namespace; any other kind (ReferenceGrant, ...) recompiles every policy
// The result equals translate() (mesh-config.ts) on the same store: test/controller/incremental.test.ts.
import type { NodeInfo, Service, Workload } from '../../common/mesh.js';
import type { CompiledPolicy } from '../../common/policy.js';
import type { KubeObject } from '../sources/types.js';
import { objectKey, type ObjectStore } from '../store/object-store.js';
import { matches, MtlsIndex, nodeOf, podIsWorkload, serviceOf, serviceSelector, sliceEndpoints, sliceServiceKey, workloadOf, type Labels, type PodSpec, type PodStatus, type TranslateOptions } from './objects.js';
import { POLICY_COMPILERS, type PolicyCompileContext } from './policy/compile.js';

/** what one build changed, by the keys the wire uses */
export interface ChangeSet {
  /** node names upserted or removed */
  nodes: Set<string>;
  /** workload uids upserted or removed */
  workloads: Set<string>;
  /** "ns/name" of services upserted or removed */
  services: Set<string>;
  /** compiled policy entry keys upserted or removed */
  policies: Set<string>;
}

export const emptyChangeSet = (): ChangeSet => ({ nodes: new Set(), workloads: new Set(), services: new Set(), policies: new Set() });

export function isEmptyChangeSet(c: ChangeSet): boolean {
  return c.nodes.size === 0 && c.workloads.size === 0 && c.services.size === 0 && c.policies.size === 0;
}

/** adds `c` into `into` (the union of several versions' changes) */
export function mergeChangeSet(into: ChangeSet, c: ChangeSet): void {
  for (const k of c.nodes) into.nodes.add(k);
  for (const k of c.workloads) into.workloads.add(k);
  for (const k of c.services) into.services.add(k);
  for (const k of c.policies) into.policies.add(k);
}

const INPUT_KINDS = new Set(['Pod', 'Service', 'EndpointSlice', 'Namespace', 'PeerAuthentication', 'Node']);

function addTo<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}
function removeFrom<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}

const same = (a: unknown, b: unknown) => a === b || JSON.stringify(a) === JSON.stringify(b);
const labelKeys = (ns: string, labels: Labels | undefined) => Object.entries(labels ?? {}).map(([k, v]) => `${ns}\0${k}=${v}`);

/** every `namespace` string value anywhere under a policy object's spec (cross-namespace references) */
function referencedNamespaces(o: KubeObject): Set<string> {
  const out = new Set<string>([o.metadata.namespace ?? '']);
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) for (const y of x) walk(y);
    else if (x && typeof x === 'object') {
      for (const [k, v] of Object.entries(x)) {
        if ((k === 'namespace' || k === 'namespaces') && typeof v === 'string') out.add(v);
        else if (k === 'namespaces' && Array.isArray(v)) for (const n of v) if (typeof n === 'string') out.add(n);
        else walk(v);
      }
    }
  };
  walk(o.spec);
  return out;
}

export class IncrementalTranslator {
  // ---- translated state (what agents get)
  readonly workloads = new Map<string, Workload>();
  readonly services = new Map<string, Service>();
  readonly policies = new Map<string, CompiledPolicy>();
  private nodeList = new Map<string, NodeInfo>();

  // ---- inputs as last seen, and indexes
  private readonly pods = new Map<string, KubeObject>(); // store key -> pod
  private readonly podWorkload = new Map<string, Workload>(); // store key -> its workload
  private readonly podsByLabel = new Map<string, Set<string>>(); // "ns\0k=v" -> pod store keys (workload pods)
  private readonly podsByNs = new Map<string, Set<string>>();
  private readonly podByIp = new Map<string, Workload>();
  private readonly hostIpNodes = new Map<string, Map<string, number>>(); // node -> hostIP -> pods (fallback addresses)
  private readonly svcObjs = new Map<string, KubeObject>(); // "ns/name" -> Service
  private readonly svcKeyOf = new Map<string, string>(); // Service store key -> "ns/name"
  private readonly svcsBySelectorLabel = new Map<string, Set<string>>();
  private readonly slices = new Map<string, KubeObject>(); // store key -> slice
  private readonly slicesBySvc = new Map<string, Set<string>>();
  private readonly svcsByEndpointIp = new Map<string, Set<string>>();
  private readonly nsLabels = new Map<string, Labels>();
  private readonly nsAnnotations = new Map<string, Labels>();
  private readonly nodeObjs = new Map<string, NodeInfo>();
  private mtls: MtlsIndex;
  private readonly policyObjs = new Map<string, { obj: KubeObject; entries: string[]; namespaces: Set<string> }>();

  // ---- pending work
  private readonly dirtyPods = new Set<string>();
  private readonly dirtySlices = new Set<string>();
  private readonly dirtySvcStoreKeys = new Set<string>();
  private readonly dirtyNamespaces = new Set<string>();
  private readonly dirtyPolicyObjs = new Set<string>();
  private peerAuthDirty = false;
  private nodesDirty = false;
  private allPoliciesDirty = false;

  constructor(
    private readonly store: ObjectStore,
    private readonly opts: TranslateOptions,
  ) {
    this.mtls = new MtlsIndex([], opts.rootNamespace);
    // first build: everything is new
    for (const ns of store.list('Namespace')) this.dirtyNamespaces.add(ns.metadata.name);
    this.peerAuthDirty = store.list('PeerAuthentication').length > 0;
    this.nodesDirty = true;
    this.allPoliciesDirty = true;
    for (const kind of ['Pod', 'EndpointSlice', 'Service']) {
      for (const o of store.list(kind)) this.mark({ key: storeKey(o), kind });
    }
  }

  /** a store change: only remembered; build() does the work */
  mark(change: { key: string; kind: string }): void {
    switch (change.kind) {
      case 'Pod':
        this.dirtyPods.add(change.key);
        return;
      case 'EndpointSlice':
        this.dirtySlices.add(change.key);
        return;
      case 'Service':
        this.dirtySvcStoreKeys.add(change.key);
        return;
      case 'Namespace':
        this.dirtyNamespaces.add(change.key.slice(change.key.lastIndexOf('/') + 1));
        return;
      case 'PeerAuthentication':
        this.peerAuthDirty = true;
        return;
      case 'Node':
        this.nodesDirty = true;
        return;
    }
    if (change.kind in POLICY_COMPILERS) this.dirtyPolicyObjs.add(change.key);
    else if (!INPUT_KINDS.has(change.kind)) this.allPoliciesDirty = true; // an input we cannot place (ReferenceGrant, ...)
  }

  /** nodes by name, in name order */
  get nodes(): ReadonlyMap<string, NodeInfo> {
    return this.nodeList;
  }

  /** recompute what is dirty; returns what changed (empty: nothing an agent can see) */
  build(): ChangeSet {
    const changes = emptyChangeSet();
    const touchedNs = new Set<string>(); // namespaces where a workload or service changed (policy inputs)

    // namespaces and PeerAuthentications only re-mark pods
    for (const ns of this.dirtyNamespaces) {
      const o = this.store.get('v1', 'Namespace', undefined, ns);
      if (o) {
        this.nsLabels.set(ns, o.metadata.labels ?? {});
        this.nsAnnotations.set(ns, o.metadata.annotations ?? {});
      } else {
        this.nsLabels.delete(ns);
        this.nsAnnotations.delete(ns);
      }
      for (const k of this.podsByNs.get(ns) ?? []) this.dirtyPods.add(k);
    }
    this.dirtyNamespaces.clear();
    if (this.peerAuthDirty) {
      this.peerAuthDirty = false;
      this.mtls = new MtlsIndex(this.store.list('PeerAuthentication'), this.opts.rootNamespace);
      // cheap enough to re-evaluate every pod's mode (no translation unless the mode moved)
      for (const k of this.pods.keys()) this.dirtyPods.add(k);
    }

    // pods -> workloads
    const dirtySvcs = new Set<string>();
    const ctx = { opts: this.opts, nsLabels: (ns: string) => this.nsLabels.get(ns), nsAnnotations: (ns: string) => this.nsAnnotations.get(ns), mtls: this.mtls };
    for (const key of this.dirtyPods) {
      const prev = this.pods.get(key);
      const next = this.store.getByKey(key);
      const prevW = this.podWorkload.get(key);
      const nextPod = next && podIsWorkload(next) ? next : undefined;
      const nextW = nextPod ? workloadOf(nextPod, ctx) : undefined;
      if (prev) this.unindexPod(key, prev, prevW, dirtySvcs);
      if (nextPod) this.indexPod(key, nextPod, nextW!, dirtySvcs);
      if (next) {
        this.pods.set(key, next);
        addTo(this.podsByNs, next.metadata.namespace!, key);
      } else {
        this.pods.delete(key);
        if (prev) removeFrom(this.podsByNs, prev.metadata.namespace!, key);
      }
      if (prevW && (!nextW || prevW.uid !== nextW.uid)) {
        if (this.workloads.get(prevW.uid) === prevW) this.workloads.delete(prevW.uid);
        changes.workloads.add(prevW.uid);
        touchedNs.add(prevW.namespace);
      }
      if (nextW) {
        if (prevW && prevW.uid === nextW.uid && same(prevW, nextW)) {
          this.podWorkload.set(key, prevW); // unchanged: keep the object (its encoding is cached by identity)
          if (!nextW.hostNetwork) for (const ip of prevW.ips) this.podByIp.set(ip, prevW);
        } else {
          this.podWorkload.set(key, nextW);
          this.workloads.set(nextW.uid, nextW);
          changes.workloads.add(nextW.uid);
          touchedNs.add(nextW.namespace);
        }
      } else this.podWorkload.delete(key);
    }
    if (this.dirtyPods.size > 0) this.nodesDirty ||= this.fallbackNodesChanged();
    this.dirtyPods.clear();

    // slices
    for (const key of this.dirtySlices) {
      const prev = this.slices.get(key);
      const next = this.store.getByKey(key);
      if (prev) {
        const sk = sliceServiceKey(prev)!;
        removeFrom(this.slicesBySvc, sk, key);
        for (const e of sliceEndpoints(prev)) for (const ip of e.addresses) removeFrom(this.svcsByEndpointIp, ip, sk);
        dirtySvcs.add(sk);
      }
      if (next) {
        const sk = sliceServiceKey(next)!;
        this.slices.set(key, next);
        addTo(this.slicesBySvc, sk, key);
        for (const e of sliceEndpoints(next)) for (const ip of e.addresses) addTo(this.svcsByEndpointIp, ip, sk);
        dirtySvcs.add(sk);
      } else this.slices.delete(key);
    }
    this.dirtySlices.clear();

    // service objects
    for (const key of this.dirtySvcStoreKeys) {
      const next = this.store.getByKey(key);
      const sk = next ? `${next.metadata.namespace}/${next.metadata.name}` : this.svcKeyOf.get(key);
      if (!sk) continue;
      const prev = this.svcObjs.get(sk);
      if (prev) for (const lk of labelKeys(prev.metadata.namespace!, serviceSelector(prev))) removeFrom(this.svcsBySelectorLabel, lk, sk);
      if (next) {
        this.svcObjs.set(sk, next);
        this.svcKeyOf.set(key, sk);
        for (const lk of labelKeys(next.metadata.namespace!, serviceSelector(next))) addTo(this.svcsBySelectorLabel, lk, sk);
      } else {
        this.svcObjs.delete(sk);
        this.svcKeyOf.delete(key);
      }
      dirtySvcs.add(sk);
    }
    this.dirtySvcStoreKeys.clear();

    for (const sk of dirtySvcs) {
      const obj = this.svcObjs.get(sk);
      const prev = this.services.get(sk);
      const next = obj ? this.translateService(obj, sk) : undefined;
      if (next && prev && same(prev, next)) continue;
      if (next) this.services.set(sk, next);
      else if (prev) this.services.delete(sk);
      else continue;
      changes.services.add(sk);
      touchedNs.add(sk.slice(0, sk.indexOf('/')));
    }

    if (this.nodesDirty) {
      this.nodesDirty = false;
      const before = this.nodeList;
      this.rebuildNodes();
      for (const [name, n] of this.nodeList) if (before.get(name)?.ip !== n.ip) changes.nodes.add(name);
      for (const name of before.keys()) if (!this.nodeList.has(name)) changes.nodes.add(name);
    }

    this.compilePoliciesFor(touchedNs, changes);
    return changes;
  }

  // ------------------------------------------------------------------ pods

  private indexPod(key: string, pod: KubeObject, w: Workload, dirtySvcs: Set<string>): void {
    const ns = pod.metadata.namespace!;
    for (const lk of labelKeys(ns, pod.metadata.labels)) {
      addTo(this.podsByLabel, lk, key);
      for (const sk of this.svcsBySelectorLabel.get(lk) ?? []) dirtySvcs.add(sk);
    }
    if (!w.hostNetwork) {
      for (const ip of w.ips) {
        this.podByIp.set(ip, w);
        for (const sk of this.svcsByEndpointIp.get(ip) ?? []) dirtySvcs.add(sk);
      }
    }
    const hostIP = (pod.status as PodStatus | undefined)?.hostIP;
    if (hostIP) {
      const node = (pod.spec as PodSpec).nodeName!;
      let m = this.hostIpNodes.get(node);
      if (!m) this.hostIpNodes.set(node, (m = new Map()));
      m.set(hostIP, (m.get(hostIP) ?? 0) + 1);
    }
  }

  private unindexPod(key: string, pod: KubeObject, w: Workload | undefined, dirtySvcs: Set<string>): void {
    const ns = pod.metadata.namespace!;
    if (!w) return;
    for (const lk of labelKeys(ns, pod.metadata.labels)) {
      removeFrom(this.podsByLabel, lk, key);
      for (const sk of this.svcsBySelectorLabel.get(lk) ?? []) dirtySvcs.add(sk);
    }
    for (const ip of w.ips) {
      if (this.podByIp.get(ip) === w) this.podByIp.delete(ip);
      for (const sk of this.svcsByEndpointIp.get(ip) ?? []) dirtySvcs.add(sk);
    }
    const hostIP = (pod.status as PodStatus | undefined)?.hostIP;
    const m = hostIP ? this.hostIpNodes.get(w.node) : undefined;
    if (m && hostIP) {
      const n = (m.get(hostIP) ?? 1) - 1;
      if (n > 0) m.set(hostIP, n);
      else m.delete(hostIP);
      if (m.size === 0) this.hostIpNodes.delete(w.node);
    }
  }

  /** pods name nodes the Node objects may not (no RBAC for Nodes, local YAML): does the fallback set differ? */
  private fallbackNodesChanged(): boolean {
    for (const [name, ips] of this.hostIpNodes) {
      if (this.nodeObjs.has(name)) continue;
      const cur = this.nodeList.get(name);
      if (!cur || !ips.has(cur.ip)) return true;
    }
    for (const name of this.nodeList.keys()) if (!this.nodeObjs.has(name) && !this.hostIpNodes.has(name)) return true;
    return false;
  }

  private rebuildNodes(): void {
    this.nodeObjs.clear();
    for (const n of this.store.list('Node')) {
      const info = nodeOf(n);
      if (info) this.nodeObjs.set(info.name, info);
    }
    const next = new Map(this.nodeObjs);
    for (const [name, ips] of this.hostIpNodes) {
      if (next.has(name)) continue;
      const keep = this.nodeList.get(name);
      const ip = keep && ips.has(keep.ip) ? keep.ip : ips.keys().next().value!;
      next.set(name, { name, ip });
    }
    this.nodeList = new Map([...next.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
  }

  // ------------------------------------------------------------------ services

  private translateService(obj: KubeObject, sk: string): Service | undefined {
    const sliceKeys = this.slicesBySvc.get(sk);
    const slices = sliceKeys && sliceKeys.size > 0 ? [...sliceKeys].map((k) => this.slices.get(k)!) : undefined;
    const selector = serviceSelector(obj);
    const selected = !slices && selector ? this.selectPods(obj.metadata.namespace!, selector) : [];
    return serviceOf(obj, slices, selected, (ip) => this.podByIp.get(ip));
  }

  private selectPods(ns: string, selector: Labels): KubeObject[] {
    const entries = Object.entries(selector);
    if (entries.length === 0) return []; // an empty selector selects nothing for a Service
    let smallest: Set<string> | undefined;
    for (const [k, v] of entries) {
      const set = this.podsByLabel.get(`${ns}\0${k}=${v}`);
      if (!set) return [];
      if (!smallest || set.size < smallest.size) smallest = set;
    }
    const out: KubeObject[] = [];
    for (const key of smallest!) {
      const p = this.pods.get(key)!;
      if (matches(selector, p.metadata.labels ?? {})) out.push(p);
    }
    return out;
  }

  // ------------------------------------------------------------------ policies

  private compilePoliciesFor(touchedNs: Set<string>, changes: ChangeSet): void {
    const todo = new Set<string>(this.dirtyPolicyObjs);
    this.dirtyPolicyObjs.clear();
    if (this.allPoliciesDirty) {
      this.allPoliciesDirty = false;
      for (const kind of Object.keys(POLICY_COMPILERS)) for (const o of this.store.list(kind)) todo.add(storeKey(o));
      for (const k of this.policyObjs.keys()) todo.add(k);
    } else if (touchedNs.size > 0) {
      for (const [k, p] of this.policyObjs) {
        if (p.obj.metadata.namespace === this.opts.rootNamespace || [...p.namespaces].some((n) => touchedNs.has(n))) todo.add(k);
      }
    }
    if (todo.size === 0) return;
    let workloads: Workload[] | undefined;
    let services: Service[] | undefined;
    const self = this;
    const ctx: PolicyCompileContext = {
      trustDomain: this.opts.trustDomain,
      rootNamespace: this.opts.rootNamespace,
      get workloads() {
        return (workloads ??= [...self.workloads.values()]);
      },
      get services() {
        return (services ??= [...self.services.values()]);
      },
    };
    for (const key of todo) {
      const prev = this.policyObjs.get(key);
      const obj = this.store.getByKey(key);
      const compile = obj ? POLICY_COMPILERS[obj.kind] : undefined;
      const entries = obj && compile ? compile(obj, ctx) : [];
      const nextKeys = new Set(entries.map((e) => e.key));
      for (const k of prev?.entries ?? []) {
        if (nextKeys.has(k)) continue;
        this.policies.delete(k);
        changes.policies.add(k);
      }
      for (const e of entries) {
        const old = this.policies.get(e.key);
        if (old && same(old, e)) continue;
        this.policies.set(e.key, e);
        changes.policies.add(e.key);
      }
      if (obj && compile) this.policyObjs.set(key, { obj, entries: [...nextKeys], namespaces: referencedNamespaces(obj) });
      else this.policyObjs.delete(key);
    }
  }
}

/** the store's key of an object (objectKey), from the object itself */
function storeKey(o: KubeObject): string {
  return objectKey(o.apiVersion, o.kind, o.metadata.namespace, o.metadata.name);
}
