// TrafficPolicy -> CompiledTraffic (issue 13 refines: typed fields, durations in ms, defaults).
import { policyEntryKey, type CompiledPolicy } from '../../../common/policy.js';
import type { KubeObject } from '../../sources/types.js';
import type { PolicyCompileContext } from './compile.js';

interface TrafficSpec {
  targetRef: { kind: 'Service'; name: string; port?: number };
}

export function compileTrafficPolicy(o: KubeObject, _ctx: PolicyCompileContext): CompiledPolicy[] {
  const ns = o.metadata.namespace!;
  const spec = o.spec as TrafficSpec;
  return [
    {
      kind: 'TrafficPolicy',
      key: policyEntryKey('TrafficPolicy', ns, o.metadata.name),
      namespace: ns,
      name: o.metadata.name,
      traffic: { service: `${ns}/${spec.targetRef.name}`, ...(spec.targetRef.port ? { port: spec.targetRef.port } : {}), spec: o.spec },
    },
  ];
}
