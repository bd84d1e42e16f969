// Malformed weft.io objects every validator of the CRD schemas must refuse (ajv in crds.test.ts, the
// controller's own store in controller-validation.test.ts), each as a patch of a valid base object.
// Each: kind, what is wrong, the object (as a patch of a valid one), the field the error must name.
export const base = {
  AuthorizationPolicy: { apiVersion: 'weft.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'p', namespace: 'n' }, spec: { action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/n/sa/a'] } }] }] } },
  PeerAuthentication: { apiVersion: 'weft.io/v1alpha1', kind: 'PeerAuthentication', metadata: { name: 'p', namespace: 'n' }, spec: { mtls: { mode: 'STRICT' } } },
  TrafficPolicy: { apiVersion: 'weft.io/v1alpha1', kind: 'TrafficPolicy', metadata: { name: 'p', namespace: 'n' }, spec: { targetRef: { kind: 'Service', name: 'cart' } } },
} as const;

export const MALFORMED: [keyof typeof base, string, Record<string, unknown>, RegExp][] = [
  ['AuthorizationPolicy', 'unknown action', { action: 'PERMIT' }, /\/spec\/action must be equal to one of the allowed values/],
  ['AuthorizationPolicy', 'a port as a number (Istio uses strings)', { rules: [{ to: [{ operation: { ports: [8080] } }] }] }, /\/spec\/rules\/0\/to\/0\/operation\/ports\/0 must be string/],
  ['AuthorizationPolicy', 'port out of range', { rules: [{ to: [{ operation: { ports: ['123456'] } }] }] }, /ports\/0 must match pattern/],
  ['AuthorizationPolicy', 'a from entry without source', { rules: [{ from: [{ principals: ['x'] }] }] }, /\/spec\/rules\/0\/from\/0 must have required property 'source'/],
  ['AuthorizationPolicy', 'a typo: rule instead of rules', { rule: [] }, /\/spec must NOT have additional properties \(rule\)/],
  ['AuthorizationPolicy', 'principals as a string', { rules: [{ from: [{ source: { principals: 'cluster.local/ns/n/sa/a' } }] }] }, /principals must be array/],
  ['AuthorizationPolicy', 'a when without key', { rules: [{ when: [{ values: ['1'] }] }] }, /\/spec\/rules\/0\/when\/0 must have required property 'key'/],
  ['PeerAuthentication', 'lower-case mode', { mtls: { mode: 'strict' } }, /\/spec\/mtls\/mode must be equal to one of the allowed values/],
  ['PeerAuthentication', 'mtls without mode', { mtls: {} }, /\/spec\/mtls must have required property 'mode'/],
  ['PeerAuthentication', 'bad port-level mode', { selector: { matchLabels: { app: 'a' } }, portLevelMtls: { '8080': { mode: 'OFF' } } }, /\/spec\/portLevelMtls\/8080\/mode must be equal to one of the allowed values/],
  ['PeerAuthentication', 'selector labels that are not strings', { selector: { matchLabels: { app: 1 } } }, /\/spec\/selector\/matchLabels\/app must be string/],
  ['TrafficPolicy', 'no targetRef', { targetRef: undefined }, /\/spec must have required property 'targetRef'/],
  ['TrafficPolicy', 'targetRef to a Deployment', { targetRef: { kind: 'Deployment', name: 'cart' } }, /\/spec\/targetRef\/kind must be equal to one of the allowed values/],
  ['TrafficPolicy', 'a duration in words', { targetRef: { kind: 'Service', name: 'cart' }, timeouts: { request: '3 seconds' } }, /\/spec\/timeouts\/request must match pattern/],
  ['TrafficPolicy', 'maxEjectionPercent above 100', { targetRef: { kind: 'Service', name: 'cart' }, outlierDetection: { maxEjectionPercent: 150 } }, /\/spec\/outlierDetection\/maxEjectionPercent must be <= 100/],
  ['TrafficPolicy', 'unknown load balancer', { targetRef: { kind: 'Service', name: 'cart' }, loadBalancer: { simple: 'FASTEST' } }, /\/spec\/loadBalancer\/simple must be equal to one of the allowed values/],
  ['TrafficPolicy', 'unknown retry condition', { targetRef: { kind: 'Service', name: 'cart' }, retries: { attempts: 2, retryOn: '5xx,sometimes' } }, /\/spec\/retries\/retryOn must match pattern/],
  ['TrafficPolicy', 'negative attempts', { targetRef: { kind: 'Service', name: 'cart' }, retries: { attempts: -1 } }, /\/spec\/retries\/attempts must be >= 0/],
  ['TrafficPolicy', 'the old built-in spelling algorithm', { targetRef: { kind: 'Service', name: 'cart' }, loadBalancer: { algorithm: 'RANDOM' } }, /\/spec\/loadBalancer must NOT have additional properties \(algorithm\)/],
  ['TrafficPolicy', 'a fault percentage above 100', { targetRef: { kind: 'Service', name: 'cart' }, fault: { abort: { httpStatus: 503, percentage: { value: 101 } } } }, /\/spec\/fault\/abort\/percentage\/value must be <= 100/],
  ['TrafficPolicy', 'an unknown fallback condition', { targetRef: { kind: 'Service', name: 'cart' }, fallback: { response: { status: 200 }, on: ['sometimes'] } }, /\/spec\/fallback\/on\/0 must be equal to one of the allowed values/],
  ['TrafficPolicy', 'a rate limit without requestsPerSecond', { targetRef: { kind: 'Service', name: 'cart' }, rateLimit: { burst: 5 } }, /\/spec\/rateLimit must have required property 'requestsPerSecond'/],
  ['TrafficPolicy', 'zero maxConnections', { targetRef: { kind: 'Service', name: 'cart' }, connectionPool: { tcp: { maxConnections: 0 } } }, /\/spec\/connectionPool\/tcp\/maxConnections must be >= 1/],
];


export function patched(kind: keyof typeof base, patch: Record<string, unknown>): { spec: Record<string, unknown> } {
  const obj = structuredClone(base[kind]) as unknown as { spec: Record<string, unknown> };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete obj.spec[k];
    else obj.spec[k] = v;
  }
  return obj;
}
