// The Gateway API's HTTPRoute retry and timeout conformance cases (conformance/tests/httproute-retry*,
// httproute-timeout-*: gateway tests upstream, the same GEP-1731 semantics in the mesh) through two real node
// proxies: codes and attempts (attempts = retries after the first try, the last failure returned as it
// came), a code not listed is not retried, per-try timeouts retried without codes, retries cut by the
// request timeout, connection errors retried, backendRequest and its 0s. The backend simulates failures
// per request id: the first `succeedAfter` tries fail (with `responseCode`, after `delayRetry`, or by
// closing the connection), then it answers 200.
import t from 'tap';
import http from 'node:http';

import { routingRouter } from '../../agent/routing/router.js';
import { listen, startMesh, type PodSpec } from '../proxy/fixtures/mesh.js';
import { applyPolicies, serviceRoute } from './apply-policies.js';

const PODS: PodSpec[] = [
  { name: 'client', node: 'node-a', ip: '127.0.23.1' },
  { name: 'backend', node: 'node-b', ip: '127.0.23.2' },
];
const VIP = '127.0.97.60';

const tries = new Map<string, number>();
const server = http.createServer((req, res) => {
  const q = new URL(req.url ?? '/', 'http://x').searchParams;
  const id = q.get('id') ?? '';
  const n = (tries.get(id) ?? 0) + 1;
  tries.set(id, n);
  const failing = n <= Number(q.get('succeedAfter') ?? 0);
  const delay = failing ? Number(q.get('delayRetry') ?? 0) : Number(q.get('delay') ?? 0);
  const answer = () => {
    if (failing && q.get('connectionError')) return void req.socket.destroy();
    res.statusCode = failing ? Number(q.get('responseCode') ?? 500) : 200;
    res.end(`try ${n}`);
  };
  if (delay === 0) return answer();
  const timer = setTimeout(answer, delay);
  res.on('close', () => clearTimeout(timer));
});
const port = await listen(server, '127.0.23.2');
const mesh = await startMesh(PODS, [{ name: 'backend', vip: VIP, port: 80, targetPort: port, pods: ['backend'], appProtocol: 'http' }], { stages: { router: routingRouter() } });
t.teardown(async () => {
  await mesh.close();
  server.close();
});
mesh.route('client', VIP, 80);

const prefix = (value: string) => [{ path: { type: 'PathPrefix', value } }];
const backend = [{ name: 'backend', port: 80 }];
applyPolicies(mesh, [
  serviceRoute('HTTPRoute', 'retries', 'backend', [
    { matches: prefix('/retry/code-500-attempts-3'), retry: { codes: [500], attempts: 3 }, backendRefs: backend },
    { matches: prefix('/retry/code-all-attempts-2'), retry: { codes: [500, 502, 503, 504], attempts: 2 }, backendRefs: backend },
    { matches: prefix('/retry/backend-request-timeout-200ms'), retry: { attempts: 2 }, timeouts: { backendRequest: '200ms' }, backendRefs: backend },
    { matches: prefix('/retry/request-timeout-200ms'), retry: { codes: [500], attempts: 5 }, timeouts: { backendRequest: '200ms', request: '400ms' }, backendRefs: backend },
    { matches: prefix('/retry/no-status-code-attempts-3'), retry: { attempts: 3 }, backendRefs: backend },
    { matches: prefix('/backend-timeout'), timeouts: { backendRequest: '500ms' }, backendRefs: backend },
    { matches: prefix('/disable-backend-timeout'), timeouts: { backendRequest: '0s' }, backendRefs: backend },
  ]),
  // Lifts the retry budget so it never decides a case here (its own tests: retry-budget.test.ts, the e2e).
  { apiVersion: 'weft.io/v1alpha1', kind: 'TrafficPolicy', metadata: { name: 'budget', namespace: 'default' }, spec: { targetRef: { group: '', kind: 'Service', name: 'backend' }, retryBudget: { percent: 100, minRetriesPerSecond: 1000 } } },
]);

let ids = 0;
const call = (path: string, sim: Record<string, string>): Promise<{ status: number; tries: number }> =>
  new Promise((resolve, reject) => {
    const id = `r${++ids}`;
    const qs = new URLSearchParams({ ...sim, id }).toString();
    const req = http.request({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.23.1', path: `${path}?${qs}`, headers: { host: 'backend' }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, tries: tries.get(id) ?? 0 }));
    });
    req.on('error', reject);
    req.end();
  });

const cases: [string, string, Record<string, string>, number, number | undefined][] = [
  // [what, path, simulation, status, tries the backend saw (undefined: not checked)]
  ['succeeds after 2 retries on 500 with attempts 3', '/retry/code-500-attempts-3', { responseCode: '500', succeedAfter: '2' }, 200, 3],
  ['fails when the retries needed on 500 exceed attempts', '/retry/code-500-attempts-3', { responseCode: '500', succeedAfter: '4' }, 500, 4],
  ['does not retry 503 when only 500 is listed', '/retry/code-500-attempts-3', { responseCode: '503', succeedAfter: '2' }, 503, 1],
  ...(['500', '502', '503', '504'].flatMap((code) => [
    [`succeeds after 1 retry on ${code} (all codes, attempts 2)`, '/retry/code-all-attempts-2', { responseCode: code, succeedAfter: '1' }, 200, 2],
    [`fails when the retries needed on ${code} exceed attempts 2`, '/retry/code-all-attempts-2', { responseCode: code, succeedAfter: '3' }, Number(code), 3],
  ]) as [string, string, Record<string, string>, number, number][]),
  ['succeeds after 2 retries on per-try timeouts (attempts 2, no codes)', '/retry/backend-request-timeout-200ms', { responseCode: '500', succeedAfter: '2', delayRetry: '300' }, 200, 3],
  ['fails with 504 when the per-try timeouts exceed attempts', '/retry/backend-request-timeout-200ms', { responseCode: '500', succeedAfter: '3', delayRetry: '300' }, 504, 3],
  ['succeeds when retries complete within the request timeout', '/retry/request-timeout-200ms', { responseCode: '500', succeedAfter: '1' }, 200, 2],
  ['fails with 504 when the tries exceed the request timeout', '/retry/request-timeout-200ms', { responseCode: '500', succeedAfter: '4', delayRetry: '100' }, 504, undefined],
  ['succeeds after 2 retries on connection errors (attempts 3, no codes)', '/retry/no-status-code-attempts-3', { connectionError: '1', succeedAfter: '2' }, 200, 3],
  ['backendRequest 500ms: a quick answer', '/backend-timeout', {}, 200, 1],
  ['backendRequest 500ms: a 1 s answer → 504', '/backend-timeout', { delay: '1000' }, 504, 1],
  ['backendRequest 0s: a 1 s answer → 200', '/disable-backend-timeout', { delay: '1000' }, 200, 1],
];

// Found by these cases, not fixed yet (docs/routing.md, Known gaps): across nodes the destination's proxy
// answers a pod that closed the connection before a response with its own 503, which the source cannot tell
// from the application's, so a retry stanza without 503 does not retry it; and a kept-alive connection
// closed after the request reached the server is retried once more outside `attempts` (the stale-connection
// retry), so the tries seen exceed attempts + 1. Kept as todo so the gap shows in every run.
const TODO: Record<string, string> = {
  'fails with 504 when the per-try timeouts exceed attempts': 'across nodes the backend sees one try more than attempts + 1 and the last one answers 200',
  'succeeds after 2 retries on connection errors (attempts 3, no codes)': 'across nodes the destination proxy answers the reset with its own 503, not retried',
};

for (const [what, path, sim, status, n] of cases) {
  t.test(what, TODO[what] ? { todo: TODO[what] } : {}, async (t) => {
    const r = await call(path, sim);
    t.equal(r.status, status, 'status');
    if (n !== undefined) t.equal(r.tries, n, 'tries the backend saw');
  });
}

t.test('fails when the retries needed on connection errors exceed attempts', { todo: 'across nodes: the destination 503 stops the retries; on one node the stale-connection retry adds a try' }, async (t) => {
  const r = await call('/retry/no-status-code-attempts-3', { connectionError: '1', succeedAfter: '4' });
  // Upstream accepts 500 or 503 here; Weft answers a connection that closed before a response with 503.
  t.ok([500, 503].includes(r.status), `status ${r.status}`);
  t.equal(r.tries, 4, 'the first try and 3 retries');
});
