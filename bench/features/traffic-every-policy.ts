// TrafficPolicy (issue 13): one policy on the server's Service with every field the data path applies —
// least request balancing, connection pool limits, outlier detection, a local rate limit, fault injection
// at a negligible percentage, a fallback — none of which trips at bench load, so the row is the cost of the
// per-request bookkeeping (pick, circuit slot, feedback, bucket, fault draw).
import type { FeatureScenario } from './types.js';

export const trafficEveryPolicy: FeatureScenario = {
  id: 'traffic-all',
  label: 'a TrafficPolicy with every applied field (balancer, pool limits, outlier detection, rate limit, fault, fallback)',
  owner: 'D, issue 13',
  objects: (ctx) => `---
apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: { name: bench-traffic, namespace: ${ctx.namespace} }
spec:
  targetRef: { group: "", kind: Service, name: ${ctx.server.service} }
  loadBalancer: { simple: LEAST_REQUEST }
  connectionPool:
    tcp: { maxConnections: 100000 }
    http: { http2MaxRequests: 100000, maxRetries: 100 }
  outlierDetection: { consecutive5xxErrors: 5, consecutiveGatewayErrors: 3, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 50 }
  rateLimit: { requestsPerSecond: 1000000, burst: 1000000 }
  fault:
    delay: { fixedDelay: 1ms, percentage: { value: 0.0001 } }
    abort: { httpStatus: 503, percentage: { value: 0.0001 } }
  fallback: { response: { status: 200, body: generic }, on: [no-healthy-endpoint] }
`,
};
