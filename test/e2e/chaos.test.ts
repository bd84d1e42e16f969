// Chaos on a two-node sandbox (issue 15), with a client that sends one request after another with an
// unmodified curl (a new connection each, `--max-time 2`) to a server on the other node while something
// breaks:
//   1. the client node's agent is killed with SIGKILL under load: while it is gone the namespace's fail mode
//      (closed, the default) refuses at once, no request hangs; the supervisor restarts it and traffic is
//      back soon after the new agent is up;
//   2. the controller is stopped (SIGSTOP) for 10 s (the 10 minutes is a bench run): traffic carries on
//      from the config and certificates in force, not one request fails;
//   3. the server node's underlay link is cut for 5 s: requests across it fail within their own deadline (none
//      hangs), and the tunnel comes back by itself once the link does.
// Figures are printed; bounds are loose (a loaded CI machine); the 2 s is held by the bench.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

import { uniqueSandboxId } from '../../sandbox/api.js';
import { startRequestLoop, type LoopSample } from '../../sandbox/request-loop.js';
import { testSandbox } from '../helpers/sandbox.js';
import { repoRoot } from '../helpers/paths.js';
import { join } from 'node:path';

const NODE = process.execPath;
const SERVER = join(repoRoot, 'sandbox', 'demo', 'http-server.mjs');
const SPEC = `apiVersion: v1
kind: Namespace
metadata: { name: chaos, labels: { weft.io/mesh: enabled } }
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: chaos }
spec: { nodeName: node-1, containers: [{ name: main, command: [sleep, infinity] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: web, namespace: chaos, labels: { app: web } }
spec:
  nodeName: node-2
  containers: [{ name: web, command: [${NODE}, ${SERVER}], env: [{ name: NAME, value: web }] }]
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: chaos }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
`;
const URL = 'http://web.chaos.svc.cluster.local/';

const id = uniqueSandboxId();
const stopped: number[] = [];
let cutNetns: string | undefined;
// whatever a failed test left broken is mended before the sandbox goes
const mend = () => {
  for (const pid of stopped) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      /* gone */
    }
  }
  if (cutNetns) execFileSync('ip', ['-n', cutNetns, 'link', 'set', 'eth0', 'up']);
};
const sb = await testSandbox(t, id, SPEC, 2, mend);
const ok = (s: LoopSample) => s.body.includes('"service":"web"');
const gaps = (xs: LoopSample[]) => xs.filter((s) => !ok(s));

// the mesh is up when the client reaches the server through it
for (let i = 0; i < 60; i++) {
  const r = await sb.exec('chaos/client', ['curl', '-sS', '--max-time', '5', URL], { timeoutMs: 30_000 });
  if (r.stdout.includes('"service":"web"')) break;
  await sleep(500);
}

t.test('the client node\'s agent killed (SIGKILL) under load: fail mode holds, traffic back after the restart', async (t) => {
  const agentPid = () => sb.status().nodes.find((n) => n.name === 'node-1')!.agent.pid;
  const before = agentPid()!;
  const loop = startRequestLoop(id, 'chaos/client', URL, 20_000);
  await loop.running;
  await sleep(3000);
  const killedAt = Date.now();
  process.kill(before, 'SIGKILL');
  let restartedAt: number | undefined;
  for (let i = 0; i < 300 && !restartedAt; i++) {
    const p = agentPid();
    if (p && p !== before) restartedAt = Date.now();
    else await sleep(50);
  }
  t.ok(restartedAt, 'the supervisor started a new agent');
  const xs = await loop.done;
  const failed = gaps(xs);
  const after = xs.filter((s) => s.start > killedAt);
  const firstOk = after.find(ok);
  t.ok(xs.filter((s) => s.end < killedAt).every(ok), 'every request before the kill answered');
  t.ok(firstOk, 'traffic came back');
  t.ok(xs.filter((s) => firstOk && s.start > firstOk.end).every(ok), 'and stayed');
  const slowest = Math.max(0, ...failed.map((s) => s.end - s.start));
  t.ok(failed.every((s) => /Couldn't connect|Failed to connect|refused|reset|Empty reply|timed out/i.test(s.body)), `the failures were refusals or resets: ${[...new Set(failed.map((s) => s.body.slice(0, 80)))].join(' | ')}`);
  t.ok(slowest < 2500, `no request hung: the slowest failure took ${slowest} ms (curl's own limit is 2 s)`);
  // (the new agent's pid shows in the sandbox status once it reported ready, so it may lag the first answer)
  t.pass(`kill at 0 ms, first answer again at ${firstOk!.end - killedAt} ms, new agent's pid seen at ${restartedAt! - killedAt} ms; ${failed.length} of ${xs.length} requests failed, all at once (slowest ${slowest} ms)`);
});

t.test('the controller stopped for 10 s: traffic carries on, not one request fails', async (t) => {
  const pid = sb.status().controller.pid!;
  const loop = startRequestLoop(id, 'chaos/client', URL, 16_000);
  await loop.running;
  await sleep(2000);
  process.kill(pid, 'SIGSTOP');
  stopped.push(pid);
  await sleep(10_000);
  process.kill(pid, 'SIGCONT');
  stopped.pop();
  const xs = await loop.done;
  t.same(gaps(xs).map((s) => s.body.slice(0, 80)), [], `all ${xs.length} requests answered`);
});

t.test('the server node\'s underlay cut for 5 s: requests fail within their deadline, the tunnel comes back by itself', async (t) => {
  const node2 = sb.status().nodes.find((n) => n.name === 'node-2')!;
  const loop = startRequestLoop(id, 'chaos/client', URL, 20_000);
  await loop.running;
  await sleep(2000);
  const cutAt = Date.now();
  execFileSync('ip', ['-n', node2.netns, 'link', 'set', 'eth0', 'down']);
  cutNetns = node2.netns;
  await sleep(5000);
  execFileSync('ip', ['-n', node2.netns, 'link', 'set', 'eth0', 'up']);
  cutNetns = undefined;
  const restoredAt = Date.now();
  const xs = await loop.done;
  const slowest = Math.max(...xs.map((s) => s.end - s.start));
  t.ok(slowest < 3000, `no request hung: the slowest took ${slowest} ms (curl's limit is 2 s)`);
  t.ok(xs.filter((s) => s.end < cutAt).every(ok), 'every request before the cut answered');
  const firstOk = xs.find((s) => s.start >= restoredAt && ok(s));
  t.ok(firstOk, 'answered again after the link came back');
  t.ok(xs.filter((s) => firstOk && s.start > firstOk.end).every(ok), 'and stayed');
  t.pass(`link down for ${restoredAt - cutAt} ms; first answer ${firstOk!.end - restoredAt} ms after it came back; ${gaps(xs).length} of ${xs.length} requests failed`);
});
