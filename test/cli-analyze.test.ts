// `weft analyze`, as a user runs it before applying files: an object the controller would refuse is an
// Error with its file and line (exit 79, a CI job can gate on it); findings across objects are Warnings
// (exit 0 unless --failure-threshold Warning); a clean set says so; -o json gives the findings as data.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { repoRoot, weftBin } from './helpers/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-analyze-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const run = (...args: string[]) => spawnSync(process.execPath, [weftBin, 'analyze', ...args], { encoding: 'utf8', cwd: repoRoot, env: { ...process.env, NO_COLOR: '1' } });

const WORLD = `apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { weft.io/mesh: enabled } }
---
apiVersion: v1
kind: Pod
metadata: { name: web-1, namespace: shop, labels: { app: web } }
spec: { nodeName: n1, serviceAccountName: web, containers: [{ name: web, image: x }] }
status: { phase: Running, podIP: 10.0.0.5, conditions: [{ type: Ready, status: "True" }] }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec: { clusterIP: 10.96.0.5, selector: { app: web }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
`;

t.test('a clean set of files', async (t) => {
  const d = join(dir, 'clean');
  mkdirSync(d);
  writeFileSync(join(d, 'world.yaml'), WORLD);
  writeFileSync(join(d, 'policy.yaml'), `apiVersion: weft.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: web-from-web, namespace: shop }
spec:
  selector: { matchLabels: { app: web } }
  action: ALLOW
  rules: [{ from: [{ source: { principals: [cluster.local/ns/shop/sa/web] } }] }]
`);
  const r = run('-f', d);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /No problems found/);
});

t.test('an object the controller would refuse: Error, file and line, exit 79', async (t) => {
  const f = join(dir, 'bad.yaml');
  writeFileSync(f, `${WORLD}---
# a route with a typo in its match type
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: typo, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: web, port: 80 }]
  rules: [{ matches: [{ path: { type: Prefix, value: /v2 } }], backendRefs: [{ name: web, port: 80 }] }]
`);
  const r = run('-f', f);
  t.equal(r.status, 79, 'exit 79');
  t.match(r.stdout, new RegExp(`Error\\s+WA0004\\s+HTTPRoute shop/typo\\s+${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:17\\s+.*spec\\.rules\\[0\\]\\.matches\\[0\\]\\.path\\.type`));
});

t.test('findings across objects: Warnings, exit 0 unless the threshold says Warning', async (t) => {
  const f = join(dir, 'cross.yaml');
  writeFileSync(f, `${WORLD}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: a, namespace: shop, creationTimestamp: "2026-01-01T00:00:00Z" }
spec:
  parentRefs: [{ group: "", kind: Service, name: web, port: 80 }]
  rules: [{ matches: [{ path: { value: /api } }], backendRefs: [{ name: web, port: 80 }, { name: web-v2, port: 80 }] }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: b, namespace: shop, creationTimestamp: "2026-02-01T00:00:00Z" }
spec:
  parentRefs: [{ group: "", kind: Service, name: web, port: 80 }]
  rules: [{ matches: [{ path: { type: PathPrefix, value: /api } }], backendRefs: [{ name: web, port: 80 }] }]
---
apiVersion: weft.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: nobody, namespace: shop }
spec:
  selector: { matchLabels: { app: db } }
  action: ALLOW
  rules: [{ from: [{ source: { principals: ["spiffe://cluster.local/ns/shop/sa/ghost", "cluster.local/ns/shop/sa/web"] } }] }]
---
apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: { name: gone, namespace: shop }
spec:
  targetRef: { group: "", kind: Service, name: gone }
`);
  const r = run('-f', f, '-o', 'json');
  t.equal(r.status, 0, 'warnings only: exit 0');
  const found = (JSON.parse(r.stdout) as { level: string; code: string; object: string; origin: string; message: string }[]).map((x) => `${x.code} ${x.object} ${x.origin.split(':').pop()} ${x.message}`);
  t.match(found.join('\n'), /WA0102 HTTPRoute shop\/a 16 spec\.rules\[0\]\.backendRefs\[1\] \(shop\/web-v2:80\) does not resolve/);
  t.match(found.join('\n'), /WA0103 HTTPRoute shop\/b 23 spec\.rules\[0\] matches the same requests to Service shop\/web:80 as HTTPRoute shop\/a spec\.rules\[0\]/, 'a path without type is PathPrefix: the same match');
  t.match(found.join('\n'), /WA0201 AuthorizationPolicy shop\/nobody 30 selects no workload/);
  t.match(found.join('\n'), /WA0202 AuthorizationPolicy shop\/nobody 30 spec\.rules\[0\]\.from\[0\]\.source\.principals\[0\] "spiffe:\/\/cluster\.local\/ns\/shop\/sa\/ghost": no pod runs as/);
  t.notMatch(found.join('\n'), /sa\/web": no pod/, 'a service account a pod runs as is known');
  t.match(found.join('\n'), /WA0301 TrafficPolicy shop\/gone 38 targetRef: there is no Service shop\/gone/);
  t.equal(run('-f', f, '--failure-threshold', 'Warning').status, 79, 'exit 79 at the Warning threshold');
});

t.test('the README\'s command: the shipped examples analyze without errors', async (t) => {
  const r = run('-f', 'daemonset/examples');
  t.equal(r.status, 0, r.stdout + r.stderr);
});

t.test('bad usage names what to do', async (t) => {
  const none = run();
  t.not(none.status, 0);
  t.match(none.stderr, /give the files to analyze with -f FILE\|DIR/);
  t.match(run('-f', join(dir, 'missing.yaml')).stderr, /no such file or directory/);
  t.match(run('-f', dir, '--failure-threshold', 'Loud').stderr, /"Loud" is not a level/);
});
