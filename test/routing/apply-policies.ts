// Test helper: policy objects (routes, TrafficPolicies) validated and compiled as the controller does,
// then put in force on both proxies of a loopback mesh as a new config version.
import { silentLogger } from '../../common/log.js';
import type { KubeObject } from '../../controller/sources/types.js';
import { BUILTIN_KINDS, KindRegistry } from '../../controller/store/kinds.js';
import { ObjectStore } from '../../controller/store/object-store.js';
import { compilePolicies } from '../../controller/translate/policy/compile.js';
import type { MeshConfig } from '../../common/mesh.js';
import type { Mesh } from '../proxy/fixtures/mesh.js';

let version = 1;

/** Applies `objects` (replacing every policy) to both nodes; the store throws on an object it refuses. */
export function applyPolicies(mesh: Mesh, objects: Record<string, unknown>[]): MeshConfig {
  const store = new ObjectStore(new KindRegistry(BUILTIN_KINDS), silentLogger);
  for (const o of objects) store.upsert(o as unknown as KubeObject, 'test');
  const policies = compilePolicies(store, { trustDomain: 'cluster.local', rootNamespace: 'weft-system', workloads: mesh.config.workloads, services: mesh.config.services });
  const cfg = { ...mesh.config, version: ++version, policies };
  mesh.a.state.update(cfg);
  mesh.b.state.update(cfg);
  return cfg;
}

/** A mesh route (HTTPRoute or GRPCRoute) in namespace default attached to Service `parent` (and `port`). */
export function serviceRoute(kind: 'HTTPRoute' | 'GRPCRoute', name: string, parent: string, rules: unknown[], port?: number): Record<string, unknown> {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind,
    metadata: { name, namespace: 'default' },
    spec: { parentRefs: [{ group: '', kind: 'Service', name: parent, ...(port !== undefined ? { port } : {}) }], rules },
  };
}
