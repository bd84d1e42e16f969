// Routing (issue 12): one HTTPRoute with ten rules on the server's Service. Nine never match the bench's
// requests (each a longer path prefix plus a header); the catch-all PathPrefix "/" ranks last in Gateway
// API precedence, so every request is tested against all ten matches before it is sent — with a request
// header modifier, a timeout and a retry stanza on the rule that applies.
import type { FeatureScenario } from './types.js';

export const routeTenRules: FeatureScenario = {
  id: 'route-10',
  label: 'one HTTPRoute, ten rules (path + header matches), the catch-all last; header modifier, timeout, retry',
  owner: 'C, issue 12',
  objects: (ctx) => {
    const misses = Array.from({ length: 9 }, (_, i) => `
    - matches: [{ path: { type: PathPrefix, value: /bench-miss-${i} }, headers: [{ name: x-bench-rule, value: "${i}" }] }]
      backendRefs: [{ name: ${ctx.server.service}, port: ${ctx.server.httpPort} }]`).join('');
    return `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: bench-route, namespace: ${ctx.namespace} }
spec:
  parentRefs: [{ group: "", kind: Service, name: ${ctx.server.service}, port: ${ctx.server.httpPort} }]
  rules:${misses}
    - matches: [{ path: { type: PathPrefix, value: / } }]
      filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { set: [{ name: x-bench-route, value: hit }] } }]
      timeouts: { request: 10s }
      retry: { attempts: 1, codes: [503] }
      backendRefs: [{ name: ${ctx.server.service}, port: ${ctx.server.httpPort} }]
`;
  },
};
