// The authorization stage's CPU per request: the agent's PolicyEnforcer (table lookup, Istio evaluation,
// metrics) deciding HTTP requests for a workload selected by ten AuthorizationPolicies, next to the same
// workload with none. A and B run interleaved in one process, several rounds, so machine noise hits both;
// the report is the median of the rounds. This is the cost the destination proxy adds per request (and per
// TCP connection); the proxy's own per-request cost is in the main bench (npm run bench).
//   node dist/bench/authz-eval.js [requests-per-round] [rounds]
import { silentLogger } from '../common/log.js';
import type { MeshConfig, Workload } from '../common/mesh.js';
import type { CompiledPolicy } from '../common/policy.js';
import { Registry } from 'prom-client';
import { PolicyEnforcer } from '../agent/authz/enforcer.js';
import { AuthzMetrics } from '../agent/authz/metrics.js';
import type { AuthorizeContext } from '../agent/proxy/authorize.js';
import { MeshState } from '../agent/state/mesh-state.js';
import { compileAuthorizationPolicy } from '../controller/translate/policy/authz.js';
import type { KubeObject } from '../controller/sources/types.js';

const N = Number(process.argv[2] ?? 200_000);
const ROUNDS = Number(process.argv[3] ?? 7);

const cart: Workload = { uid: 'cart', namespace: 'shop', name: 'cart-0', serviceAccount: 'cart', node: 'n1', ips: ['10.98.1.10'], labels: { app: 'cart', tier: 'backend' }, meshed: true, hostNetwork: false, mtlsMode: 'PERMISSIVE', workloadName: 'cart' };
const other: Workload = { ...cart, uid: 'other', name: 'other-0', labels: { app: 'other' } };

/** Ten policies of the kinds operators write: DENYs on paths and headers, ALLOWs by principal, namespace, ip block, port. */
const SPECS: Array<Record<string, unknown>> = [
  { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin', '/admin/*'] } }] }] },
  { action: 'DENY', rules: [{ when: [{ key: 'request.headers[x-debug]', values: ['1'] }] }] },
  { action: 'DENY', rules: [{ from: [{ source: { notNamespaces: ['shop', 'monitoring'] } }], to: [{ operation: { methods: ['DELETE'] } }] }] },
  { action: 'DENY', rules: [{ from: [{ source: { ipBlocks: ['192.168.0.0/16'] } }] }] },
  { action: 'AUDIT', rules: [{ from: [{ source: { notNamespaces: ['shop'] } }] }] },
  { action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/ops/sa/admin'] } }] }] },
  { action: 'ALLOW', rules: [{ from: [{ source: { namespaces: ['monitoring'] } }], to: [{ operation: { paths: ['/metrics'] } }] }] },
  { action: 'ALLOW', rules: [{ from: [{ source: { ipBlocks: ['10.99.0.0/24'] } }] }] },
  { action: 'ALLOW', rules: [{ to: [{ operation: { ports: ['9090'] } }] }] },
  { action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/frontend'] } }], to: [{ operation: { methods: ['GET', 'POST'], paths: ['/cart/*'] } }] }] },
];

function policies(): CompiledPolicy[] {
  return SPECS.flatMap((spec, i) =>
    compileAuthorizationPolicy({ apiVersion: 'weft.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: `p${i}`, namespace: 'shop' }, spec: { selector: { matchLabels: { app: 'cart' } }, ...spec } } as KubeObject, {
      trustDomain: 'cluster.local',
      rootNamespace: 'weft-system',
      workloads: [],
      services: [],
    }),
  );
}

const state = new MeshState('n1');
const cfg: MeshConfig = { version: 1, trustDomain: 'cluster.local', nodes: [], workloads: [cart, other], services: [], policies: policies() };
state.update(cfg);
const enforcer = new PolicyEnforcer({ state, log: silentLogger, metrics: new AuthzMetrics(new Registry()) });

const headers: Record<string, string> = { 'user-agent': 'curl/8', accept: '*/*' };
const request = { method: 'GET', path: '/cart/42', host: 'cart.shop.svc.cluster.local', header: (n: string) => headers[n] };
const ctx = (w: Workload): AuthorizeContext => ({ sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/frontend', sourceWorkload: undefined, sourceIp: '10.98.2.7', destination: w, destinationIp: '10.98.1.10', destinationPort: 8080, mtls: true, request });

function round(w: Workload): number {
  const c = ctx(w);
  let allowed = 0;
  const t0 = process.cpuUsage();
  for (let i = 0; i < N; i++) if (enforcer.decide(c).allow) allowed++;
  const d = process.cpuUsage(t0);
  if (allowed !== N) throw new Error(`expected every request allowed, got ${allowed}/${N}`);
  return ((d.user + d.system) * 1000) / N; // ns per request
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
round(cart);
round(other); // warm up both paths
const none: number[] = [];
const ten: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  none.push(round(other));
  ten.push(round(cart));
}
const out = { requestsPerRound: N, rounds: ROUNDS, nsPerRequest: { noPolicies: Math.round(median(none)), tenPolicies: Math.round(median(ten)) }, addedNsPerRequest: Math.round(median(ten) - median(none)) };
process.stdout.write(`${JSON.stringify(out)}\n`);
process.stdout.write(`authorization stage, CPU per request (median of ${ROUNDS} interleaved rounds of ${N}): none ${out.nsPerRequest.noPolicies} ns, ten policies ${out.nsPerRequest.tenPolicies} ns\n`);
