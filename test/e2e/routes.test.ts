// Gateway API routes on a real two-node sandbox with unmodified curl: a 70/30 split over 500 requests, a
// weight-0 backend, a split moved to 100/0 through the controller's API in force for new requests within 1 s
// (curl in a loop in the pod), precedence, header and query
// matches, 404, a pod-IP call untouched, header modifiers, redirect, rewrite, a 500 ms request timeout
// against a 2 s backend, 0s, retries on a 50%-503 upstream with the budget raised, and the agents' metrics.
import t from 'tap';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import { APPLY_PATH } from '../../controller/api/paths.js';
import { startSandbox, uniqueSandboxId, type SandboxHandle } from '../../sandbox/api.js';
import { effectOf, loopClientYaml, startRequestLoop } from '../../sandbox/request-loop.js';
import { weft } from '../helpers/sandbox.js';
import { scrapeAll, sum } from './mesh-probe.js';

const NODE = process.execPath;
const SERVER = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'route-server.js');
const NS = 'rt';

const server = (name: string, node: string, app: string) => `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${NS}, labels: { app: ${app}, pod: ${name} } }
spec:
  nodeName: ${node}
  containers: [{ name: s, command: [${NODE}, ${SERVER}], env: [{ name: POD, value: ${name} }, { name: PORT, value: "8080" }] }]
`;
const svc = (name: string, selector: string) => `
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ${NS} }
spec: { selector: { pod: ${selector} }, ports: [{ name: http, port: 80, targetPort: 8080, appProtocol: http }] }
`;
const split = (w1: number, w2: number) => `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: split, namespace: ${NS} }
spec:
  parentRefs: [{ group: "", kind: Service, name: split }]
  rules:
    - backendRefs: [{ name: v1, port: 80, weight: ${w1} }, { name: v2, port: 80, weight: ${w2} }, { name: flaky, port: 80, weight: 0 }]
`;
const SPEC = [
  loopClientYaml(NS, 'node-1'),
  server('v1', 'node-1', 'echo'),
  server('v2', 'node-2', 'echo'),
  server('flaky', 'node-2', 'flaky'),
  svc('v1', 'v1'),
  svc('v2', 'v2'),
  svc('flaky', 'flaky'),
  svc('split', 'v1'),
  svc('echo', 'v1'),
  split(70, 30),
  `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: echo, namespace: ${NS} }
spec:
  parentRefs: [{ group: "", kind: Service, name: echo, port: 80 }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /v2 } }, { headers: [{ name: Version, value: two }] }]
      backendRefs: [{ name: v2, port: 80 }]
    - matches: [{ path: { type: Exact, value: /v2/exact } }, { queryParams: [{ name: pod, value: one }] }]
      backendRefs: [{ name: v1, port: 80 }]
    - matches: [{ path: { type: PathPrefix, value: /hdr } }]
      filters:
        - { type: RequestHeaderModifier, requestHeaderModifier: { set: [{ name: X-Set, value: by-route }] } }
        - { type: ResponseHeaderModifier, responseHeaderModifier: { add: [{ name: X-Route, value: echo }] } }
      backendRefs: [{ name: v1, port: 80 }]
    - matches: [{ path: { type: PathPrefix, value: /old } }]
      filters: [{ type: RequestRedirect, requestRedirect: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /new }, statusCode: 301 } }]
    - matches: [{ path: { type: PathPrefix, value: /api } }]
      filters: [{ type: URLRewrite, urlRewrite: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /v1 } } }]
      backendRefs: [{ name: v2, port: 80 }]
    - matches: [{ path: { type: PathPrefix, value: /delay/2000/t } }]
      timeouts: { request: 500ms }
      backendRefs: [{ name: v1, port: 80 }]
    - matches: [{ path: { type: PathPrefix, value: /delay/2000/none } }]
      timeouts: { request: 0s }
      backendRefs: [{ name: v1, port: 80 }]
    - matches: [{ path: { type: PathPrefix, value: /flaky } }]
      retry: { attempts: 3, codes: [503] }
      backendRefs: [{ name: flaky, port: 80 }]
---
apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: { name: echo-budget, namespace: ${NS} }
spec: { targetRef: { group: "", kind: Service, name: echo }, retryBudget: { percent: 100, minRetriesPerSecond: 1000 } }
`,
].join('---\n');

const id = uniqueSandboxId();
t.teardown(() => {
  const r = weft(['sandbox', 'down', '--id', id], { timeoutMs: 180_000 });
  if (r.status !== 0) console.error(`sandbox down --id ${id} failed: ${r.stderr}`);
});
const sb: SandboxHandle = await startSandbox({ id, spec: SPEC, nodes: 2 });
const status = sb.status();
if (!status.mesh.enabled) throw new Error(`sandbox ${id} came up without the mesh: ${status.mesh.reason}`);
const curl = (args: string[], timeoutMs = 120_000) => sb.exec(`${NS}/client`, ['curl', '-sS', '--max-time', '30', ...args], { timeoutMs });
const host = (s: string) => `${s}.${NS}.svc.cluster.local`;
const pods = (out: string) => [...out.matchAll(/"pod":"([a-z0-9]+)"/g)].map((m) => m[1]!);
for (let i = 0; i < 60; i++) {
  const r = await curl(['-f', `http://${host('echo')}/ready`]);
  if (r.code === 0 && r.stdout.includes('"pod":"v1"')) break;
  await sleep(500);
}

t.test('70/30 split over 500 requests, weight 0 gets none; moved to 100/0', async (t) => {
  const r = await curl([`http://${host('split')}/n[1-500]`], 300_000);
  t.equal(r.code, 0, r.stderr);
  const p = pods(r.stdout);
  t.equal(p.length, 500);
  const v1 = p.filter((x) => x === 'v1').length;
  t.ok(Math.abs(v1 / 500 - 0.7) <= 0.05, `v1 ${v1}/500, v2 ${p.filter((x) => x === 'v2').length}/500`);
  t.equal(p.filter((x) => x === 'flaky').length, 0, 'weight 0 gets none');
  // The move is observed by curl in a loop in the client pod (a new connection per request, each stamped
  // with the pod's clock, which is this machine's): from the moment the route is sent to the controller's
  // API (what `weft apply` posts; the CLI's own start-up, ~0.2 s, is measured by bench/config-propagation.ts
  // --via cli), every request started after some moment must reach v1, and that moment must come within
  // 1 s (issue 12).
  const loop = startRequestLoop(id, `${NS}/client`, `http://${host('split')}/moving`, 3000);
  await loop.running;
  await sleep(600);
  const t0 = Date.now();
  const res = await fetch(`${status.controller.web!.replace(/\/$/, '')}${APPLY_PATH}`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: split(100, 0) });
  const acceptedMs = Date.now() - t0;
  t.equal(res.status, 200, `apply: ${await res.text()}`);
  const samples = await loop.done;
  const before = samples.filter((x) => x.end < t0);
  t.ok(before.some((x) => x.body.includes('"pod":"v2"')), `before the apply the split sent some of ${before.length} requests to v2`);
  const effect = effectOf(samples, t0, (body) => body.includes('"pod":"v1"'));
  t.ok(effect.allNewFromMs !== undefined && effect.allNewFromMs < 1000, `every new request to v1 from ${effect.allNewFromMs} ms after the apply was sent (accepted after ${acceptedMs} ms; the last request to v2 started at ${effect.lastOldMs ?? 'none'} ms)`);
  t.ok(effect.after >= 20, `${effect.after} requests observed after the apply`);
});

t.test('matching, precedence, 404, pod IP untouched', async (t) => {
  const who = async (path: string, extra: string[] = []) => {
    const r = await curl(['-w', ' %{http_code}', ...extra, `http://${host('echo')}${path}`]);
    const code = r.stdout.trim().split(' ').at(-1);
    return code === '200' ? pods(r.stdout)[0] : code;
  };
  t.equal(await who('/v2'), 'v2');
  t.equal(await who('/v2/x'), 'v2');
  t.equal(await who('/v2/exact'), 'v1', 'Exact beats the longer prefix');
  t.equal(await who('/any', ['-H', 'version: two']), 'v2', 'header match');
  t.equal(await who('/any?pod=one'), 'v1', 'query match');
  t.equal(await who('/v2example'), '404', 'no match → 404 (element-wise prefix)');
  const v1ip = status.pods.find((p) => p.namespace === NS && p.name === 'v1')!.ip;
  const direct = await curl(['-w', ' %{http_code}', `http://${v1ip}:8080/v2example`]);
  t.match(direct.stdout, /"pod":"v1".* 200$/s, 'the pod IP called directly is never routed');
});

t.test('header modifiers, redirect, rewrite', async (t) => {
  const h = await curl(['-D', '-', `http://${host('echo')}/hdr`]);
  t.match(h.stdout, /\r\nx-route: echo\r\n/i, 'response header added');
  t.match(h.stdout, /"set":"by-route"/, 'request header set');
  const r = await curl(['-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', `http://${host('echo')}/old/page?q=1`]);
  t.equal(r.stdout, `301 http://${host('echo')}/new/page?q=1`);
  const w = await curl([`http://${host('echo')}/api/items`]);
  t.match(w.stdout, /"pod":"v2","method":"GET","path":"\/v1\/items"/, 'prefix rewritten, sent to v2');
});

t.test('timeouts.request 500ms vs a 2 s backend → 504 within 600 ms; 0s → 200', async (t) => {
  const r = await curl(['-o', '/dev/null', '-w', '%{http_code} %{time_total}', `http://${host('echo')}/delay/2000/t`]);
  const [code, secs] = r.stdout.split(' ');
  t.equal(code, '504');
  t.ok(Number(secs) >= 0.45 && Number(secs) < 0.6, `504 after ${secs} s`);
  const ok = await curl(['-o', '/dev/null', '-w', '%{http_code}', `http://${host('echo')}/delay/2000/none`]);
  t.equal(ok.stdout, '200');
});

t.test('retries: a 50%-503 upstream with attempts 3, codes [503], budget raised', async (t) => {
  const before = await scrapeAll(Object.fromEntries(status.nodes.map((n) => [n.name, n.agent.metrics!])));
  const r = await curl(['-o', '/dev/null', '-w', '%{http_code}\n', `http://${host('echo')}/flaky/[1-200]`], 300_000);
  const codes = r.stdout.trim().split('\n');
  const ok = codes.filter((c) => c === '200').length;
  t.equal(codes.length, 200);
  t.ok(ok / 200 >= 0.93, `success ${ok}/200`);
  const after = await scrapeAll(Object.fromEntries(status.nodes.map((n) => [n.name, n.agent.metrics!])));
  const retries = (m: typeof after) => sum(m['node-1']!, 'weft_retries_total', { destination_service: 'echo.rt.svc.cluster.local', policy: 'route' });
  t.ok(retries(after) - retries(before) >= 90, `retries counted apart: weft_retries_total +${retries(after) - retries(before)}`);
});
