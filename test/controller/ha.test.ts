// High availability: two controller replicas sharing the CA state; an agent given both addresses keeps its
// config and moves to the survivor within 5 s when its replica dies; the survivor signs CSRs; a root rotated
// on one replica is adopted by the other (the store's watch); versions never go backwards across replicas;
// Lease-based leader election (fake API server with resourceVersion conflicts).
import t from 'tap';

import { ConfigClient } from '../../agent/config/client.js';
import { ControllerConnection } from '../../agent/config/controller-connection.js';
import { createSpiffeCsrPemNative, generateP256KeyPair } from '../../common/csr.js';
import { LeaseElector, type LeaseApi } from '../../controller/ha/lease.js';
import { DirectoryRootStore } from '../../controller/ca/root-store.js';
import { freePort, makeEnv, runController, TOKENS, until } from './harness.js';

t.test('two replicas: agent fails over within 5 s keeping its config, survivor signs, rotation adopted', async (t) => {
  const env = makeEnv(t);
  const a = await runController({ ...env, grpcPort: await freePort() }, { rootStore: new DirectoryRootStore(`${env.stateDir}/ca`, 100) });
  const b = await runController({ ...env, grpcPort: await freePort() }, { rootStore: new DirectoryRootStore(`${env.stateDir}/ca`, 100) });
  let aClosed = false;
  t.teardown(async () => {
    if (!aClosed) await a.close();
    await b.close();
  });
  t.equal(a.ca.rootCertPem(), b.ca.rootCertPem(), 'the second replica loaded the root the first created');

  const conn = new ControllerConnection({
    address: `127.0.0.1:${a.grpcPort},127.0.0.1:${b.grpcPort}`,
    node: 'node-1',
    token: () => TOKENS['node-1'],
    trustBundlePem: a.ca.trustBundlePem(),
    controllerIdentity: a.controllerIdentity,
  });
  t.teardown(() => conn.close());
  const applied: number[] = [];
  const client = new ConfigClient({ connection: conn, apply: (cfg) => void applied.push(cfg.version), retryInitialMs: 200, retryMaxMs: 1000 });
  await client.start();
  t.teardown(() => client.stop());
  await until(() => client.status().connected && client.status().configVersion > 0, 10_000, 'first config');
  const first = client.config()!;
  const onA = a.grpc.connectedNodes().includes('node-1');
  const dying = onA ? a : b;
  const survivor = onA ? b : a;
  t.ok(onA || b.grpc.connectedNodes().includes('node-1'), 'the agent streams from one replica');

  const killedAt = Date.now();
  await dying.close();
  if (dying === a) aClosed = true;
  else t.teardown(() => undefined);
  t.same(client.config()!.workloads.length, first.workloads.length, 'config kept while the replica is gone');
  await until(() => survivor.grpc.connectedNodes().includes('node-1') && client.status().connected && client.status().ack === 'ACK' && client.status().configVersion > first.version, 5000, 'stream on the survivor');
  const failoverMs = Date.now() - killedAt;
  t.ok(failoverMs <= 5000, `on the survivor ${failoverMs} ms after the replica died`);
  t.ok(applied.every((v, i) => i === 0 || v > applied[i - 1]!), `versions only went up across replicas (${applied.join(' < ')})`);
  t.same(client.config()!.services, first.services, 'same mesh from the survivor');

  // the survivor signs (the agent's channel now only has it)
  const csr = createSpiffeCsrPemNative('spiffe://cluster.local/ns/shop/sa/web', await generateP256KeyPair());
  const signed = await conn.signCsr(csr);
  t.equal(signed.spiffeId, 'spiffe://cluster.local/ns/shop/sa/web', 'CSR signed by the survivor');
  t.match(signed.trustBundlePem, survivor.ca.rootCertPem().trim().slice(0, 60));

  // a rotation on the survivor is stored; a replica started later loads it, and a running one adopts it
  const c = await runController({ ...env, grpcPort: await freePort() }, { rootStore: new DirectoryRootStore(`${env.stateDir}/ca`, 100) });
  t.teardown(() => c.close());
  const oldRoot = survivor.ca.rootCertPem();
  await survivor.ca.rotateRoot();
  await until(() => c.ca.rootCertPem() === survivor.ca.rootCertPem(), 5000, 'rotation adopted by the other replica');
  t.not(c.ca.rootCertPem(), oldRoot, 'new root on the other replica');
  t.ok(c.ca.trustBundlePem().includes(oldRoot), 'the previous root stays in its trust bundle too');
});

/** an in-memory Lease API with the API server's optimistic concurrency (409 on a stale resourceVersion) */
function fakeLeaseApi(): LeaseApi & { fail: boolean } {
  let stored: any;
  let rv = 0;
  const err = (code: number) => Object.assign(new Error(`HTTP ${code}`), { code });
  const api = {
    fail: false,
    async readNamespacedLease() {
      if (api.fail) throw err(503);
      if (!stored) throw err(404);
      return structuredClone(stored);
    },
    async createNamespacedLease({ body }: { body: any }) {
      if (api.fail) throw err(503);
      if (stored) throw err(409);
      stored = { ...structuredClone(body), metadata: { ...body.metadata, resourceVersion: String(++rv) } };
      return structuredClone(stored);
    },
    async replaceNamespacedLease({ body }: { body: any }) {
      if (api.fail) throw err(503);
      if (body.metadata?.resourceVersion !== stored?.metadata?.resourceVersion) throw err(409);
      stored = { ...structuredClone(body), metadata: { ...body.metadata, resourceVersion: String(++rv) } };
      return structuredClone(stored);
    },
  };
  return api as unknown as LeaseApi & { fail: boolean };
}

t.test('Lease: one leader; takeover after the lease expires; a leader that cannot renew steps down', async (t) => {
  const api = fakeLeaseApi();
  let now = 1_000_000;
  const events: string[] = [];
  const mk = (id: string) =>
    new LeaseElector({ api, namespace: 'weft-system', name: 'weft-controller', identity: id, leaseDurationMs: 15_000, now: () => now, onStartedLeading: () => events.push(`${id}+`), onStoppedLeading: () => events.push(`${id}-`) });
  const a = mk('a');
  const b = mk('b');
  await Promise.all([a.tryOnce(), b.tryOnce()]);
  t.equal([a.isLeader(), b.isLeader()].filter(Boolean).length, 1, 'exactly one leader after a race');
  const [leader, other] = a.isLeader() ? [a, b] : [b, a];
  now += 10_000;
  await leader.tryOnce();
  await other.tryOnce();
  t.ok(leader.isLeader() && !other.isLeader(), 'renewed: the other waits');
  // the leader's API access breaks: it steps down before the lease can be taken
  api.fail = true;
  now += 11_000;
  await leader.tryOnce();
  t.notOk(leader.isLeader(), 'a leader that could not renew within its deadline stepped down');
  api.fail = false;
  now += 2_000; // not yet expired for the other (renewed 13 s ago, 15 s lease)
  await other.tryOnce();
  t.notOk(other.isLeader(), 'no takeover before the lease expires');
  now += 3_000;
  await other.tryOnce();
  t.ok(other.isLeader(), 'took over after expiry');
  await other.stop();
  await leader.tryOnce();
  t.ok(leader.isLeader(), 'a released lease is taken at once');
  t.ok(events.length >= 4, `transitions: ${events.join(' ')}`);
});
