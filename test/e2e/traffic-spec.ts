// The sandbox of the TrafficPolicy e2e test (traffic.test.ts), as Kubernetes YAML: namespace tr in the mesh,
// replicas running fixtures/traffic-server.ts (healthy, always 500, always 503, slow), Services over them,
// two caller pods, and the TrafficPolicies the test starts with. `node dist/test/e2e/traffic-spec.js` prints it.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const NS = 'tr';
const NODE = process.execPath;
const SERVER = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'traffic-server.js');

function serverPod(name: string, node: string, labels: Record<string, string>, env: Record<string, string | number> = {}): string {
  const l = Object.entries({ pod: name, ...labels }).map(([k, v]) => `${k}: "${v}"`).join(', ');
  const e = Object.entries({ POD: name, ...env }).map(([k, v]) => `{ name: ${k}, value: "${v}" }`).join(', ');
  return `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${NS}, labels: { ${l} } }
spec:
  nodeName: ${node}
  serviceAccountName: server
  containers: [{ name: server, command: [${NODE}, ${SERVER}], env: [${e}] }]
`;
}
const service = (name: string, selector: Record<string, string>) => `apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ${NS} }
spec:
  selector: { ${Object.entries(selector).map(([k, v]) => `${k}: "${v}"`).join(', ')} }
  ports: [{ name: http, port: 80, targetPort: 8080, appProtocol: http }]
`;
const sleeper = (name: string, node: string) => `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${NS} }
spec:
  nodeName: ${node}
  serviceAccountName: ${name}
  containers: [{ name: main, command: [sleep, infinity] }]
`;
export const policy = (name: string, spec: string) => `apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: { name: ${name}, namespace: ${NS} }
spec:
  targetRef: { group: "", kind: Service, name: ${name} }
${spec}`;

// Round robin, so the failing replica gets its third of the requests and trips quickly each time it is back;
// a 3 s interval, so it is ejected again before a sweep could lower its multiplier (Envoy: one step per
// interval spent in service).
export const OUTLIER = policy('trio', `  loadBalancer: { simple: ROUND_ROBIN }
  outlierDetection: { consecutive5xxErrors: 3, interval: 3s, baseEjectionTime: 8s, maxEjectionPercent: 34 }
`);
export const SPEC = [
  `apiVersion: v1
kind: Namespace
metadata: { name: ${NS}, labels: { weft.io/mesh: enabled } }
`,
  ...['server', 'client', 'client2'].map((sa) => `apiVersion: v1\nkind: ServiceAccount\nmetadata: { name: ${sa}, namespace: ${NS} }\n`),
  serverPod('ok-a', 'node-1', { trio: 'yes', hash: 'yes' }),
  serverPod('ok-b', 'node-2', { trio: 'yes', hash: 'yes' }),
  serverPod('bad', 'node-1', { trio: 'yes' }, { STATUS: 500 }),
  serverPod('fast', 'node-1', { duo: 'yes', hash: 'yes' }),
  serverPod('slow', 'node-2', { duo: 'yes' }, { DELAY_MS: 60 }),
  serverPod('gate-0', 'node-2', { gate: 'yes' }, { DELAY_MS: 2000 }),
  serverPod('queue-0', 'node-2', { queue: 'yes' }, { DELAY_MS: 1000 }),
  serverPod('lim-0', 'node-1', { lim: 'yes' }),
  serverPod('unavailable', 'node-2', {}, { STATUS: 503 }),
  sleeper('client', 'node-1'),
  sleeper('client2', 'node-2'),
  service('trio', { trio: 'yes' }),
  service('duo', { duo: 'yes' }),
  service('hashy', { hash: 'yes' }),
  service('gate', { gate: 'yes' }),
  service('queue', { queue: 'yes' }),
  service('lim', { lim: 'yes' }),
  service('faulty', { pod: 'ok-a' }),
  service('nobody', { pod: 'none' }),
  service('broken', { pod: 'unavailable' }),
  service('generic', { pod: 'ok-b' }),
  service('sluggish', { gate: 'yes' }),
  OUTLIER,
  policy('hashy', `  loadBalancer: { consistentHash: { httpHeaderName: x-user } }
`),
  policy('gate', `  connectionPool: { tcp: { maxConnections: 1 } }
`),
  policy('queue', `  connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 3 } }
`),
  policy('lim', `  rateLimit: { requestsPerSecond: 5, burst: 5 }
`),
  policy('faulty', `  fault:
    delay: { fixedDelay: 1500ms, percentage: { value: 10 } }
    abort: { httpStatus: 418, percentage: { value: 5 } }
`),
  policy('nobody', `  fallback: { response: { status: 200, headers: { content-type: text/plain }, body: "generic answer" }, on: [no-healthy-endpoint] }
`),
  policy('broken', `  fallback: { backendRef: { name: generic, port: 80 }, on: [5xx] }
`),
  policy('sluggish', `  timeouts: { request: 500ms }
  fallback: { backendRef: { name: generic, port: 80 }, on: [timeout] }
`),
].join('---\n');


if (process.argv[1] === fileURLToPath(import.meta.url)) process.stdout.write(SPEC);
