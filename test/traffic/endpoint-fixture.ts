// A node's TrafficPolicy runtime with something to show for every endpoint column: a backend at its
// circuit limits with a full pending queue and one refusal, an ejected endpoint, a rate-limit bucket that
// refused three requests. Shared by the endpoint view tests (agent, controller, CLI, operator page).
import type { MeshConfig } from '../../common/mesh.js';
import type { TrafficEntry } from '../../common/policy.js';
import { RuntimeState } from '../../agent/pipeline/runtime.js';
import { BackendState } from '../../agent/traffic/backend-state.js';
import { acquire } from '../../agent/traffic/circuit.js';
import { recordOutcome } from '../../agent/traffic/outlier.js';
import { TokenBucket } from '../../agent/traffic/rate-limit.js';
import { BACKEND_SPACE, BUCKET_SPACE } from '../../agent/traffic/stages.js';

export const pool = { maxConnections: 1, http1MaxPendingRequests: 3, maxRetries: 2 };
export const od = { consecutive5xxErrors: 1, consecutiveGatewayErrors: 0, intervalMs: 1000, baseEjectionTimeMs: 8000, maxEjectionPercent: 50, maxEjectionTimeMs: 300_000 };
export const entry: TrafficEntry = {
  kind: 'TrafficPolicy',
  key: 'TrafficPolicy/shop/web',
  namespace: 'shop',
  name: 'web',
  traffic: { service: 'shop/web', createdMs: 0, loadBalancer: { kind: 'LEAST_REQUEST' }, problems: [], connectionPool: pool, outlierDetection: od, rateLimit: { requestsPerSecond: 1, burst: 0, perPrincipal: [] } },
};
export const config = {
  version: 3,
  trustDomain: 'cluster.local',
  nodes: [],
  workloads: [],
  services: [{ namespace: 'shop', name: 'web', clusterIPs: ['10.97.0.5'], ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }], endpoints: [] }],
  policies: [entry],
} as unknown as MeshConfig;

/** One backend at its limit: a request in flight, three waiting (the queue is full), one refused; one endpoint ejected; a bucket that refused three. */
export function runtime(now: number): RuntimeState {
  const rt = new RuntimeState();
  const b = rt.get(BACKEND_SPACE, 'shop/web:80', () => new BackendState('shop/web:80'));
  const ok = b.endpoint('10.98.1.5:8080');
  acquire(pool, b, ok, 'http1', false, now);
  acquire(pool, b, ok, 'http1', false, now);
  acquire(pool, b, ok, 'http1', false, now);
  acquire(pool, b, ok, 'http1', false, now);
  acquire(pool, b, ok, 'http1', false, now);
  recordOutcome(od, b, b.endpoint('10.98.2.7:8080'), { status: 500 }, 2, now);
  const tb = rt.get(BUCKET_SPACE, 'shop/web|uid-a|-1', () => new TokenBucket(1, 1, now));
  tb.endpoint = '10.98.1.5:8080';
  for (let i = 0; i < 3; i++) tb.count('spiffe://cluster.local/ns/shop/sa/client');
  return rt;
}
