// AuthorizationPolicy -> CompiledAuthz (issue 11 refines: principals to spiffe://, rules typed).
import { policyEntryKey, type CompiledPolicy } from '../../../common/policy.js';
import type { KubeObject } from '../../sources/types.js';
import type { PolicyCompileContext } from './compile.js';

interface AuthzSpec {
  action?: 'ALLOW' | 'DENY' | 'AUDIT';
  selector?: { matchLabels?: Record<string, string> };
  rules?: unknown[];
}

export function compileAuthorizationPolicy(o: KubeObject, ctx: PolicyCompileContext): CompiledPolicy[] {
  const ns = o.metadata.namespace!;
  const spec = (o.spec ?? {}) as AuthzSpec;
  const annotations = (o.metadata.annotations ?? {}) as Record<string, string>;
  const matchLabels = spec.selector?.matchLabels;
  return [
    {
      kind: 'AuthorizationPolicy',
      key: policyEntryKey('AuthorizationPolicy', ns, o.metadata.name),
      namespace: ns,
      name: o.metadata.name,
      authz: {
        action: spec.action ?? 'ALLOW',
        dryRun: annotations['weft.io/dry-run'] === 'true',
        scope: { meshWide: ns === ctx.rootNamespace && !matchLabels, namespace: ns, ...(matchLabels ? { matchLabels: { ...matchLabels } } : {}) },
        rules: spec.rules,
      },
    },
  ];
}
