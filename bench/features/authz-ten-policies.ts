// Authorization (issue 11): ten ALLOW AuthorizationPolicies on the server, each with a principal and a path
// rule; the bench client is allowed only by the last one, so every request is checked against all ten.
import type { FeatureScenario } from './types.js';

export const authzTenPolicies: FeatureScenario = {
  id: 'authz-10',
  label: 'ten ALLOW AuthorizationPolicies (principal + path each), the match in the last',
  owner: 'B, issue 11',
  objects: (ctx) =>
    Array.from({ length: 10 }, (_, i) => {
      const last = i === 9;
      return `---
apiVersion: weft.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: bench-authz-${i}, namespace: ${ctx.namespace} }
spec:
  selector: { matchLabels: { app: ${ctx.server.app} } }
  action: ALLOW
  rules:
    - from:
        - source:
            principals: [${last ? ctx.clientPrincipal : `${ctx.trustDomain}/ns/${ctx.namespace}/sa/other-${i}`}]
      to:
        - operation:
            methods: [GET, POST]
            paths: [${last ? '/*' : `/other-${i}/*`}]
`;
    }).join(''),
};
