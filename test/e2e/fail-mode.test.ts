// Fail mode end to end (issue 15) on a one-node sandbox, with unmodified curl: the node's agent is stopped
// (SIGSTOP: its heartbeat stops, its sockets stay) and then continued. While it is stopped, a meshed pod in a
// namespace that fails closed (the default) is refused at connect, one in a namespace annotated
// weft.io/fail-mode: open reaches the server directly; once the agent runs again both are captured again.
// The switch is timed both ways (the issue asks for 1 s; printed, and bounded loosely here so a loaded CI
// machine does not fail it: the bench is where the figure is held).
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { uniqueSandboxId } from '../../sandbox/api.js';
import { testSandbox } from '../helpers/sandbox.js';
import { repoRoot } from '../helpers/paths.js';
import { scrapeAll, sum } from './mesh-probe.js';

const NODE = process.execPath;
const SERVER = join(repoRoot, 'sandbox', 'demo', 'http-server.mjs');
const dir = mkdtempSync(join(tmpdir(), 'weft-failmode-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const ns = (name: string, failMode?: string) => `apiVersion: v1
kind: Namespace
metadata:
  name: ${name}
  labels: { weft.io/mesh: enabled }
${failMode ? `  annotations: { weft.io/fail-mode: ${failMode} }\n` : ''}`;
const sleeper = (namespace: string, name: string) => `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  nodeName: node-1
  containers: [{ name: main, command: [sleep, infinity] }]
`;
const SPEC = [
  ns('shut'),
  ns('ajar', 'open'),
  sleeper('shut', 'client'),
  sleeper('ajar', 'client'),
  `apiVersion: v1
kind: Pod
metadata: { name: web, namespace: ajar, labels: { app: web } }
spec:
  nodeName: node-1
  containers: [{ name: web, command: [${NODE}, ${SERVER}], env: [{ name: NAME, value: web }] }]
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: ajar }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
`,
].join('---\n');

const id = uniqueSandboxId();
let agentPid: number | undefined;
const sb = await testSandbox(t, id, SPEC, 1, () => {
  // a stopped agent would keep its sandbox from going down
  if (!agentPid) return;
  try {
    process.kill(agentPid, 'SIGCONT');
  } catch {
    /* gone */
  }
});
const status = sb.status();
const node = status.nodes[0]!;
agentPid = node.agent.pid ?? undefined;
const metricsUrls = { [node.name]: node.agent.metrics! };
const URL = 'http://web.ajar.svc.cluster.local/';

async function call(from: string, maxSeconds = 5): Promise<{ code: number; out: string }> {
  const r = await sb.exec(from, ['curl', '-sS', '--connect-timeout', '2', '--max-time', String(maxSeconds), URL], { timeoutMs: 30_000 });
  return { code: r.code ?? -1, out: r.stdout + r.stderr };
}
/** polls `from` until `ok` says so; the ms it took */
/**
 * Polls `from` until `ok` says so; returns when (ms after `t0`) the attempt that succeeded started. Each try
 * is cut at 1 s: before the switch, a connection the stopped proxy's socket accepted just waits.
 */
async function until(from: string, ok: (r: { code: number; out: string }) => boolean, t0 = Date.now(), timeoutMs = 10_000): Promise<number> {
  while (Date.now() - t0 < timeoutMs) {
    const started = Date.now();
    if (ok(await call(from, 1))) return started - t0;
    await sleep(50);
  }
  throw new Error(`${from}: never switched within ${timeoutMs} ms`);
}
const event = async (e: string) => sum((await scrapeAll(metricsUrls))[node.name]!, 'weft_redirect_events', { event: e });

for (const from of ['shut/client', 'ajar/client']) {
  await until(from, (r) => r.code === 0 && r.out.includes('"service":"web"'), Date.now(), 60_000);
}

t.test('the proxy serving: both namespaces are captured', async (t) => {
  const r0 = await event('redirected');
  for (const from of ['shut/client', 'ajar/client']) t.equal((await call(from)).code, 0, `${from}: 200`);
  t.ok((await event('redirected')) - r0 >= 2, 'both went through the proxy');
});

t.test('the agent stopped: closed refuses at connect, open goes direct; continued: captured again', async (t) => {
  const c0 = { closed: await event('failClosed'), open: await event('failOpen') };
  const stoppedAt = Date.now();
  process.kill(agentPid!, 'SIGSTOP');
  try {
    const switched = await until('shut/client', (r) => r.code === 7, stoppedAt);
    // the kernel switches within 1 s of the last heartbeat; the probe adds its own start-up and polling
    t.ok(switched < 3_000, `fail closed took over for a request started ${switched} ms after the agent stopped`);
    const refused = await call('shut/client');
    t.equal(refused.code, 7, `closed: refused at connect, at once (${refused.out.trim()})`);
    const open = await call('ajar/client');
    t.equal(open.code, 0, `open: answered directly (${open.out.trim()})`);
    t.match(open.out, /"service":"web"/);
  } finally {
    process.kill(agentPid!, 'SIGCONT');
  }
  const back = await until('shut/client', (r) => r.code === 0, Date.now());
  t.pass(`captured again ${back} ms after the agent continued`);
  const r0 = await event('redirected');
  t.equal((await call('ajar/client')).code, 0);
  t.ok((await event('redirected')) - r0 >= 1, 'through the proxy again');
  t.ok((await event('failClosed')) > c0.closed, 'fail closed counted');
  t.ok((await event('failOpen')) > c0.open, 'fail open counted');
});
