// HTTPRoute -> CompiledRoute (issue 12 refines: matches, filters, backends resolved, durations in ms).
import { policyEntryKey, type CompiledPolicy } from '../../../common/policy.js';
import type { KubeObject } from '../../sources/types.js';
import type { PolicyCompileContext } from './compile.js';

interface RouteSpec {
  parentRefs?: { group?: string; kind?: string; name: string; namespace?: string; port?: number }[];
  rules?: unknown[];
}

export function compileRoute(o: KubeObject, _ctx: PolicyCompileContext): CompiledPolicy[] {
  const ns = o.metadata.namespace!;
  const spec = (o.spec ?? {}) as RouteSpec;
  const parents = (spec.parentRefs ?? [])
    .filter((p) => (p.kind ?? 'Service') === 'Service' && (p.group ?? '') === '')
    .map((p) => ({ service: `${p.namespace ?? ns}/${p.name}`, ...(p.port ? { port: p.port } : {}) }));
  const created = Date.parse(String(o.metadata.creationTimestamp ?? ''));
  return [
    {
      kind: o.kind === 'GRPCRoute' ? 'GRPCRoute' : 'HTTPRoute',
      key: policyEntryKey(o.kind, ns, o.metadata.name),
      namespace: ns,
      name: o.metadata.name,
      route: { parents, namespace: ns, createdMs: Number.isFinite(created) ? created : 0, rules: spec.rules ?? [] },
    },
  ];
}
