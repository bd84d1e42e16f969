// Policy objects in the store -> compiled entries for the agents (common/policy.ts). One compiler per
// kind, each in its own file; this file only dispatches and orders. A compiler sees the store's objects
// and the already translated workloads and services (to resolve selectors and backends), never mutates
// them, and returns plain data. Objects that cannot be enforced never get here: the store refuses them
// when applied (controller/store/semantics.ts), naming the object and field.
import type { CompiledPolicy } from '../../../common/policy.js';
import type { Service, Workload } from '../../../common/mesh.js';
import type { KubeObject } from '../../sources/types.js';
import type { ObjectStore } from '../../store/object-store.js';
import { compileAuthorizationPolicy } from './authz.js';
import { compileRoute } from './route.js';
import { compileTrafficPolicy } from './traffic.js';

export interface PolicyCompileContext {
  trustDomain: string;
  /** AuthorizationPolicy/PeerAuthentication here apply mesh-wide (Istio's root namespace) */
  rootNamespace: string;
  workloads: readonly Workload[];
  services: readonly Service[];
}

export type PolicyCompiler = (obj: KubeObject, ctx: PolicyCompileContext) => CompiledPolicy[];

/** kind -> compiler; the kinds listed here are the ones the agents receive */
export const POLICY_COMPILERS: Record<string, PolicyCompiler> = {
  AuthorizationPolicy: compileAuthorizationPolicy,
  HTTPRoute: compileRoute,
  GRPCRoute: compileRoute,
  TrafficPolicy: compileTrafficPolicy,
};

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function compilePolicies(store: ObjectStore, ctx: PolicyCompileContext): CompiledPolicy[] {
  const out: CompiledPolicy[] = [];
  for (const [kind, compile] of Object.entries(POLICY_COMPILERS)) for (const o of store.list(kind)) out.push(...compile(o, ctx));
  return out.sort((a, b) => cmp(a.key, b.key));
}
