// Controller high availability on a real sandbox: two controller replicas sharing the CA state, agents
// given both addresses. Under live traffic (unmodified curl across the mesh) the replica serving the agents
// is killed with SIGKILL: no request fails, every agent re-subscribes to the survivor within 5 s, and the
// survivor signs a CSR for a workload of a node (over the agent's own node credentials).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { ControllerConnection, DEFAULT_CONTROLLER_IDENTITY } from '../../agent/config/controller-connection.js';
import { createSpiffeCsrPemNative, generateP256KeyPair } from '../../common/csr.js';
import { PORTS } from '../../common/ports.js';
import { startSandbox, uniqueSandboxId } from '../../sandbox/api.js';
import { startForward } from '../../sandbox/forward.js';
import { replicaPort } from '../../sandbox/mesh.js';
import type { SandboxState } from '../../sandbox/state.js';
import { leftovers, weft } from '../helpers/sandbox.js';
import { repoRoot } from '../helpers/paths.js';

const id = uniqueSandboxId();
t.teardown(() => {
  const r = weft(['sandbox', 'down', '--id', id], { timeoutMs: 180_000 });
  if (r.status !== 0) console.error(`sandbox down --id ${id}: ${r.stderr}`);
});

/** `agent subscribed` lines of a controller log: node -> times (ms) */
function subscriptions(log: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  let text = '';
  try {
    text = readFileSync(log, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    if (!line.includes('"agent subscribed"')) continue;
    const l = JSON.parse(line) as { time: string; node: string };
    out.set(l.node, [...(out.get(l.node) ?? []), Date.parse(l.time)]);
  }
  return out;
}

t.test('kill one of two controller replicas under load', async (t) => {
  const sb = await startSandbox({ id, nodes: 2, specFile: join(repoRoot, 'sandbox', 'demo.yaml'), controllers: 2 });
  const status = sb.status();
  t.ok(status.mesh.enabled, 'mesh on');
  const state = JSON.parse(readFileSync(join(status.runDir, 'state.json'), 'utf8')) as SandboxState;
  const logs = [status.controller.log!, status.controller.log!.replace(/\.log$/, '-1.log')];
  const pids = [state.pids.controller!, state.pids.controllerReplicas![0]!];
  const url = 'http://web.shop.svc.cluster.local/';
  for (let i = 0; i < 60; i++) {
    const r = await sb.exec('shop/client', ['curl', '-sf', '--max-time', '5', '-o', '/dev/null', url], { timeoutMs: 30_000 });
    if (r.code === 0) break;
    await sleep(500);
  }
  const nodes = status.nodes.map((n) => n.name);
  const holder = (i: number) => nodes.filter((n) => subscriptions(logs[i]!).has(n)).length;
  // the agents spread over the replicas as their channels pick them: kill the one serving the most
  const victim = holder(1) >= holder(0) ? 1 : 0;
  const survivor = 1 - victim;
  t.ok(holder(victim) > 0, `replica ${victim} serves ${holder(victim)} agent(s)`);

  // 60 requests, 100 ms apart, through the mesh (client on one node, web replicas on both)
  const load = sb.exec('shop/client', ['sh', '-c', `ok=0; fail=0; for i in $(seq 1 60); do if curl -sf --max-time 5 -o /dev/null ${url}; then ok=$((ok+1)); else fail=$((fail+1)); fi; sleep 0.1; done; echo ok=$ok fail=$fail`], { timeoutMs: 180_000 });
  await sleep(2000);
  // the agents the victim serves (their latest subscription is to it) must move; the others already are on the survivor
  const latest = (i: number, n: string) => Math.max(-1, ...(subscriptions(logs[i]!).get(n) ?? []));
  const moving = nodes.filter((n) => latest(victim, n) > latest(survivor, n));
  t.ok(moving.length > 0, `replica ${victim} is the latest choice of ${moving.join(', ')}`);
  const killedAt = Date.now();
  process.kill(pids[victim]!, 'SIGKILL');
  let movedMs = -1;
  while (Date.now() - killedAt < 15_000) {
    const subs = subscriptions(logs[survivor]!);
    if (moving.every((n) => (subs.get(n) ?? []).some((at) => at >= killedAt - 1000))) {
      movedMs = Date.now() - killedAt;
      break;
    }
    await sleep(100);
  }
  t.ok(movedMs >= 0 && movedMs <= 5000, `the ${moving.length} agent(s) of the killed replica subscribed to the survivor ${movedMs} ms after the kill`);
  const r = await load;
  t.equal(r.code, 0);
  t.match(r.stdout, /ok=60 fail=0/, `no failed request while a replica died (${r.stdout.trim()})`);

  // the survivor signs a CSR for a service account with a pod on node-1, with node-1's own credentials
  const pod = status.pods.find((p) => p.node === 'node-1' && p.meshed)!;
  const fwd = await startForward({ name: `ha-grpc-${survivor}`, netns: status.controller.netns, target: `${status.controller.ip}:${replicaPort(PORTS.controllerGrpc, survivor)}` }, join(status.runDir, 'fwd'), state.plan.systemCgroup);
  t.teardown(() => {
    for (const p of fwd.pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  const conn = new ControllerConnection({
    address: `127.0.0.1:${fwd.port}`,
    node: 'node-1',
    token: () => readFileSync(join(status.runDir, 'secrets', 'node-1.token'), 'utf8').trim(),
    trustBundlePem: readFileSync(join(state.plan.controller.stateDir, 'trust-bundle.pem'), 'utf8'),
    controllerIdentity: DEFAULT_CONTROLLER_IDENTITY('cluster.local'),
  });
  t.teardown(() => conn.close());
  const spiffe = `spiffe://cluster.local/ns/${pod.namespace}/sa/${pod.serviceAccount}`;
  let signed: Awaited<ReturnType<ControllerConnection['signCsr']>> | undefined;
  for (let i = 0; i < 20 && !signed; i++) {
    signed = await conn.signCsr(createSpiffeCsrPemNative(spiffe, await generateP256KeyPair())).catch(async () => {
      await sleep(250);
      return undefined;
    });
  }
  t.equal(signed?.spiffeId, spiffe, 'CSR signed by the surviving replica');
});

t.test('down leaves nothing', async (t) => {
  const r = weft(['sandbox', 'down', '--id', id], { timeoutMs: 180_000 });
  t.equal(r.status, 0, r.stderr);
  t.same(leftovers(id), []);
});
