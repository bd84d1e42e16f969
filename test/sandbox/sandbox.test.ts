// A real sandbox on this machine (root): bad specs create nothing; two nodes where an unmodified curl in a
// pod on node-1 reaches a service whose pod is on node-2, by name, meshed or not; status, exec and logs;
// and `down` leaves nothing behind, also after everything was kill -9'ed.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { readState, runDirFor } from '../../sandbox/state.js';
import { sandboxStatus, type SandboxStatus } from '../../sandbox/status.js';
import { leftovers, testSandboxId, weft, weftAsync } from '../helpers/sandbox.js';
import { repoRoot } from '../helpers/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-sandbox-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const HTTP_SERVER = join(repoRoot, 'sandbox', 'demo', 'http-server.mjs');
const SPEC = `
apiVersion: v1
kind: Namespace
metadata: { name: demo, labels: { weft.io/mesh: enabled } }
---
apiVersion: v1
kind: Namespace
metadata: { name: plain }
---
apiVersion: v1
kind: Pod
metadata: { name: web, namespace: demo, labels: { app: web } }
spec:
  nodeName: node-2
  containers:
    - name: web
      command: [node, ${HTTP_SERVER}]
      env: [{ name: PORT, value: "8080" }, { name: NAME, value: web }]
      ports: [{ name: http, containerPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: demo }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: http, appProtocol: http }]
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: demo }
spec:
  nodeName: node-1
  containers: [{ name: client, command: [sleep, infinity] }]
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: plain }
spec:
  nodeName: node-1
  containers: [{ name: client, command: [sleep, infinity] }]
`;
const specFile = join(dir, 'two-nodes.yaml');
writeFileSync(specFile, SPEC);

function status(id: string): SandboxStatus {
  const r = weft(['sandbox', 'status', '--id', id, '--json']);
  if (r.status !== 0) throw new Error(`status failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as SandboxStatus;
}

/** curl in a pod until the service answers 2xx (a just-started server may still be binding). */
async function curlFrom(id: string, pod: string, url: string): Promise<{ code: number | null; out: string; err: string }> {
  let r = weft(['sandbox', 'exec', '--id', id, pod, '--', 'curl', '-fsS', '--max-time', '5', url]);
  for (let i = 0; i < 30 && r.status !== 0; i++) {
    await sleep(200);
    r = weft(['sandbox', 'exec', '--id', id, pod, '--', 'curl', '-fsS', '--max-time', '5', url]);
  }
  return { code: r.status, out: r.stdout, err: r.stderr };
}

t.test('a bad spec is refused before anything is created', async (t) => {
  const id = testSandboxId();
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, SPEC.replace('nodeName: node-2', 'nodeName: node-9'));
  const r = weft(['sandbox', 'up', '--id', id, '-f', bad, '--detach']);
  t.equal(r.status, 1);
  t.match(r.stderr, /WEFT_ERR_CONFIG: .*bad\.yaml: Pod demo\/web: spec\.nodeName: node "node-9" does not exist/);
  t.same(leftovers(id), [], 'nothing created');
});

t.test('a step that fails rolls back everything it created', async (t) => {
  const id = testSandboxId();
  t.teardown(() => void weft(['sandbox', 'down', '--id', id]));
  // Nothing can become ready in 10 ms: the controller step fails after network, pods and services were built.
  const r = weft(['sandbox', 'up', '--id', id, '-f', specFile, '--detach', '--ready-timeout', '0.01']);
  t.equal(r.status, 1);
  t.match(r.stderr, /network .*\(\d+ ms\)/, 'the steps before it ran');
  t.match(r.stderr, /WEFT_ERR_SANDBOX_STEP: controller: the controller was not ready after 0\.01s/, 'names the step and why');
  t.match(r.stderr, /rollback/);
  t.same(leftovers(id), [], 'nothing left');
});

t.test('two nodes: pods reach a service on the other node by name; down leaves nothing', async (t) => {
  const id = testSandboxId();
  t.teardown(() => void weft(['sandbox', 'down', '--id', id]));
  const up = weft(['sandbox', 'up', '--id', id, '--nodes', '2', '-f', specFile, '--detach']);
  t.equal(up.status, 0, up.status === 0 ? 'up' : `up: ${up.stderr}`);
  t.match(up.stderr, /network .*\(\d+ ms\)/, 'progress lines');

  const s = status(id);
  t.equal(s.phase, 'running');
  t.same(s.nodes.map((n) => [n.name, n.netns, n.ip]), [['node-1', `weft-${id}-node-1`, '10.99.0.11'], ['node-2', `weft-${id}-node-2`, '10.99.0.12']]);
  t.ok(s.nodes.every((n) => 'pid' in n.agent && 'metrics' in n.agent), 'nodes[].agent {pid, metrics}');
  t.ok(['netns', 'ip', 'pid', 'web'].every((k) => k in s.controller), 'controller {netns, ip, pid, web}');
  t.same(s.underlay, { netns: `weft-${id}-underlay`, interface: 'weft-ul0', cidr: '10.99.0.0/24' });
  const web = s.pods.find((p) => p.name === 'web')!;
  t.match(web, { namespace: 'demo', node: 'node-2', ip: '10.98.2.2', netns: `weft-${id}-pod-demo-web`, running: true });
  t.match(web.cgroup, new RegExp(`/weft-sandbox-${id}/node-2/pod-${web.uid}$`));
  t.match(s.services, [{ namespace: 'demo', name: 'web', clusterIP: '10.97.0.1', ports: [{ port: 80, targetPort: 'http' }], endpoints: [{ ip: '10.98.2.2' }] }]);

  // An unmodified curl in the meshed client on node-1, by FQDN, reaches the pod on node-2.
  const fqdn = await curlFrom(id, 'demo/client', 'http://web.demo.svc.cluster.local/');
  t.equal(fqdn.code, 0, `curl: ${fqdn.err}`);
  t.match(JSON.parse(fqdn.out || '{}'), { service: 'web', pod: 'web' }, 'answered by the pod on node-2');
  t.match((await curlFrom(id, 'demo/client', 'http://web/')).out, /"pod":"web"/, 'short name in the own namespace');
  // A pod outside the mesh reaches it through the ClusterIP translation the sandbox provides.
  t.match((await curlFrom(id, 'plain/client', 'http://web.demo/')).out, /"pod":"web"/, 'from a pod outside the mesh');

  t.ok(s.mesh.enabled, `the mesh is on (${s.mesh.reason ?? ''})`);
  t.ok(s.controller.running && s.nodes.every((n) => n.agent.running), 'controller and agents running');
  t.match(s.controller.web, /^http:\/\/127\.0\.0\.1:\d+\/$/, 'operator page on loopback');
  {
    // Through the mesh: node-1's proxy (reporter=source) saw the HTTP requests and sent them over mTLS;
    // node-2's proxy (reporter=destination) accepted them for the web workload. Read through the forwards.
    const series = (text: string, name: string, labels: Record<string, string>) =>
      text.split('\n').filter((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
    const want = { reporter: 'source', source_workload_namespace: 'demo', destination_service: 'web.demo.svc.cluster.local', response_code: '200', connection_security_policy: 'mutual_tls' };
    let m1 = '';
    let m2 = '';
    for (let i = 0; i < 25; i++) {
      [m1, m2] = await Promise.all(s.nodes.map((n) => fetch(n.agent.metrics!).then((r) => r.text())));
      if (series(m1!, 'istio_requests_total', want).length > 0) break;
      await sleep(200); // a metric may land just after the response
    }
    const sent = series(m1!, 'istio_requests_total', want);
    t.ok(sent.some((l) => Number(l.split(' ').pop()) >= 1), 'node-1 agent counted the requests, sent over mTLS');
    if (sent.length === 0) t.comment(m1!.split('\n').filter((l) => l.startsWith('istio_')).join('\n'));
    const received = m2!.split('\n').filter((l) => /^istio_\w+\{/.test(l) && l.includes('reporter="destination"') && l.includes('destination_workload="web"'));
    t.ok(received.length > 0, 'node-2 agent counted them as destination');
  }

  // exec runs in the pod's cgroup and namespaces, and passes the exit code through.
  const ex = weft(['sandbox', 'exec', '--id', id, 'demo/client', '--', 'sh', '-c', 'hostname; grep ^0:: /proc/self/cgroup; exit 3']);
  t.equal(ex.status, 3, 'exit code propagated');
  const client = s.pods.find((p) => p.namespace === 'demo' && p.name === 'client')!;
  t.match(ex.stdout, `client\n0::${client.cgroup.replace(/^\/sys\/fs\/cgroup(\/unified)?/, '')}\n`);
  const logs = weft(['sandbox', 'logs', '--id', id, 'demo/web']);
  t.match(logs.stdout, /web: HTTP on :8080/);

  // Nothing is routed out: the nodes have no default route.
  const route = weft(['sandbox', 'exec', '--id', id, 'demo/client', '--', 'ip', 'route', 'get', '192.0.2.1']);
  t.equal(route.status, 0, 'the pod routes everything to its node');
  const nodeRoute = (await import('node:child_process')).spawnSync('nsenter', [`--net=/run/netns/weft-${id}-node-1`, 'ip', 'route', 'get', '192.0.2.1'], { encoding: 'utf8' });
  t.not(nodeRoute.status, 0, 'the node has no route out');

  const again = weft(['sandbox', 'up', '--id', id, '-f', specFile, '--detach']);
  t.equal(again.status, 1);
  t.match(again.stderr, /WEFT_ERR_SANDBOX_EXISTS: sandbox ".*" (is already running|exists)/);

  const down = weft(['sandbox', 'down', '--id', id]);
  t.equal(down.status, 0, down.stderr);
  t.same(leftovers(id), [], 'machine clean after down');
  t.equal(weft(['sandbox', 'down', '--id', id]).status, 0, 'down is idempotent');
});

t.test('up, kill -9 everything, down: clean', async (t) => {
  const id = testSandboxId();
  t.teardown(() => void weft(['sandbox', 'down', '--id', id]));
  const child = weftAsync(['sandbox', 'up', '--id', id, '-f', specFile]); // foreground
  let s: SandboxStatus | undefined;
  for (let i = 0; i < 600 && s?.phase !== 'running'; i++) {
    await sleep(100);
    const st = readState(runDirFor(id));
    if (st) s = sandboxStatus(st);
  }
  t.equal(s?.phase, 'running');
  const pids = [child.pid!, s!.controller.pid, ...s!.nodes.map((n) => n.agent.pid), ...s!.pods.flatMap((p) => p.containers.map((c) => c.pid)), ...(readState(runDirFor(id))?.forwards.flatMap((f) => f.pids) ?? [])].filter((p): p is number => !!p);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
  t.not(leftovers(id).length, 0, 'the crash left resources behind');
  const again = weft(['sandbox', 'up', '--id', id, '-f', specFile, '--detach']);
  t.match(again.stderr, /WEFT_ERR_SANDBOX_EXISTS/, 'up refuses while the remains are there');
  const down = weft(['sandbox', 'down', '--id', id]);
  t.equal(down.status, 0, down.stderr);
  t.same(leftovers(id), [], 'machine clean after down');
});
