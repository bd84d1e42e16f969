// Controller <-> agent over real gRPC/TLS on loopback: node authentication, CSR signing through the
// service, config snapshot then deltas with ACK/NACK, and an invalid object refused while the last good
// config stays in force everywhere.
import t from 'tap';
import { readFileSync } from 'node:fs';

import { ConfigClient } from '../../agent/config/client.js';
import type { MeshConfig } from '../../common/mesh.js';
import { createSpiffeCsrPem, generateEcKeyPair } from '../../common/x509.js';
import { connectAgent, makeEnv, postYaml, runController, until } from './harness.js';

const WEB_ID = 'spiffe://cluster.local/ns/shop/sa/web';

t.test('node authentication and CSR signing over gRPC', async (t) => {
  const env = makeEnv(t);
  const c = await runController(env);
  t.teardown(() => c.close());
  const bundle = readFileSync(c.trustBundleFile, 'utf8');
  const good = connectAgent({ grpcPort: c.grpcPort, trustBundlePem: bundle, controllerIdentity: c.controllerIdentity }, 'node-1');
  const bad = connectAgent({ grpcPort: c.grpcPort, trustBundlePem: bundle, controllerIdentity: c.controllerIdentity }, 'node-1', 'node-2-token-0123456789abcdef');
  t.teardown(() => (good.close(), bad.close()));

  const hello = await good.connect('test');
  t.equal(hello.trustDomain, 'cluster.local');
  t.equal(hello.trustBundlePem, c.ca.trustBundlePem());
  await t.rejects(bad.connect('test'), { code: 'WEFT_ERR_CONTROLLER_CALL', grpcCode: 16, weftCode: 'WEFT_ERR_NODE_AUTH' }, "another node's token is refused");

  const keys = await generateEcKeyPair();
  const signed = await good.signCsr(await createSpiffeCsrPem(WEB_ID, keys));
  t.equal(signed.spiffeId, WEB_ID, 'web has a pod on node-1: signed');
  t.ok(signed.notAfter.getTime() > Date.now());
  const dbId = 'spiffe://cluster.local/ns/shop/sa/db';
  await t.rejects(good.signCsr(await createSpiffeCsrPem(dbId, keys)), { code: 'WEFT_ERR_CONTROLLER_CALL', grpcCode: 7, weftCode: 'WEFT_ERR_CSR_NOT_ON_NODE' }, 'db runs on node-2 only');
  await t.rejects(good.signCsr(await createSpiffeCsrPem('spiffe://other.domain/ns/shop/sa/web', keys)), { code: 'WEFT_ERR_CONTROLLER_CALL', grpcCode: 3, weftCode: 'WEFT_ERR_CSR_TRUST_DOMAIN' });

  const wrongCa = connectAgent({ grpcPort: c.grpcPort, trustBundlePem: (await import('../../controller/ca/test-ca.js').then((m) => m.createTestCa())).rootCertPem, controllerIdentity: c.controllerIdentity }, 'node-1');
  t.teardown(() => wrongCa.close());
  await t.rejects(wrongCa.connect('test', 2000), 'an agent with another trust bundle does not talk to this controller');
});

t.test('snapshot, deltas, NACK, and an invalid object refused with its name and field', async (t) => {
  const env = makeEnv(t);
  const c = await runController(env);
  t.teardown(() => c.close());
  const bundle = readFileSync(c.trustBundleFile, 'utf8');
  const conn = connectAgent({ grpcPort: c.grpcPort, trustBundlePem: bundle, controllerIdentity: c.controllerIdentity }, 'node-1');
  t.teardown(() => conn.close());

  let refuseNext = false;
  const applied: MeshConfig[] = [];
  const client = new ConfigClient({
    connection: conn,
    apply: (cfg) => {
      if (refuseNext && cfg.services.some((s) => s.name === 'api')) throw new Error('the proxy cannot route service api (test refusal)');
      applied.push(cfg);
    },
    retryInitialMs: 50,
    retryMaxMs: 200,
  });
  t.teardown(() => client.stop());
  await client.start();
  await until(() => applied.length > 0, 5000, 'first config');
  const first = applied[0]!;
  const web = first.services.find((s) => s.name === 'web')!;
  t.same(web.clusterIPs, ['10.97.0.10']);
  t.same(web.ports, [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', appProtocol: 'http' }], 'named targetPort resolved from the pod');
  t.same(web.endpoints, [{ ip: '10.98.1.10', node: 'node-1', workloadUid: 'uid-web-1', ready: true }], 'endpoints from the selector');
  const w = first.workloads.find((x) => x.name === 'web-1')!;
  t.equal(w.meshed, true);
  t.equal(w.mtlsMode, 'PERMISSIVE');
  t.same(first.nodes, [{ name: 'node-1', ip: '10.99.0.11' }, { name: 'node-2', ip: '10.99.0.12' }]);
  await until(() => c.registry.get('node-1')?.lastReport?.ack === 'ACK', 5000, 'ACK recorded');
  t.equal(c.registry.get('node-1')?.connected, true);

  // a valid change arrives as a delta
  const strict = `apiVersion: weft.io/v1alpha1
kind: PeerAuthentication
metadata: { name: strict, namespace: shop }
spec: { mtls: { mode: STRICT } }
`;
  let r = await postYaml(c.webPort, '/api/v1/apply', strict);
  t.equal(r.status, 200);
  t.same(r.body.applied, ['PeerAuthentication shop/strict']);
  await until(() => client.config()?.workloads.find((x) => x.name === 'web-1')?.mtlsMode === 'STRICT', 5000, 'STRICT delta');
  const afterStrict = client.config()!;
  t.ok(afterStrict.version > first.version, 'version went up');
  t.equal(afterStrict.policies.length, 0, "PeerAuthentication is compiled into workloads, not sent as an entry");

  // an invalid object: refused with object and field; the whole request is refused; nothing changes
  const invalid = `apiVersion: v1
kind: Service
metadata: { name: extra, namespace: shop }
spec: { ports: [{ port: 81 }] }
---
apiVersion: weft.io/v1alpha1
kind: PeerAuthentication
metadata: { name: broken, namespace: shop }
spec: { mtls: { mode: STRICTEST } }
`;
  const before = c.publisher.current().version;
  r = await postYaml(c.webPort, '/api/v1/apply', invalid);
  t.equal(r.status, 422);
  t.equal(r.body.error.code, 'WEFT_ERR_CONFIG');
  t.match(r.body.error.message, /PeerAuthentication shop\/broken, field spec\.mtls\.mode: must be one of "STRICT", "PERMISSIVE", "DISABLE"/);
  t.notOk(c.store.get('v1', 'Service', 'shop', 'extra'), 'the valid object of a refused request was not applied either');
  c.publisher.flush();
  t.equal(c.publisher.current().version, before, 'no new version');
  t.equal(client.config()!.version, afterStrict.version, 'agent keeps the last good config');

  // an invalid file in the watched directory: refused, last good objects stay
  const { writeFileSync } = await import('node:fs');
  writeFileSync(`${env.configDir}/mesh.yaml`, readFileSync(`${env.configDir}/mesh.yaml`, 'utf8').replace('containerPort: 8080', 'containerPort: 99999'));
  await c.localSource!.rescan();
  const problems = [...c.localSource!.problems.values()].flat();
  t.match(problems.join('\n'), /Pod shop\/web-1, field spec\.containers\[0\]\.ports\[0\]\.containerPort: must be <= 65535/, 'the file problem names object and field');
  const pod = c.store.get('v1', 'Pod', 'shop', 'web-1') as { spec: { containers: { ports: { containerPort: number }[] }[] } } | undefined;
  t.equal(pod?.spec.containers[0]!.ports[0]!.containerPort, 8080, 'the last good pod stays');
  t.equal(client.config()!.version, afterStrict.version, 'still the last good config');

  // the agent NACKs a config it cannot apply: it keeps the last good one, operators see the reason
  refuseNext = true;
  r = await postYaml(c.webPort, '/api/v1/apply', `apiVersion: v1
kind: Service
metadata: { name: api, namespace: shop }
spec: { clusterIP: 10.97.0.11, selector: { app: web }, ports: [{ port: 80, targetPort: 8080 }] }
`);
  t.equal(r.status, 200);
  await until(() => c.registry.get('node-1')?.lastReport?.ack === 'NACK', 5000, 'NACK recorded');
  t.match(c.registry.get('node-1')!.lastReport!.nackReason!, /cannot route service api/);
  t.equal(client.status().ack, 'NACK');
  t.equal(client.config()!.version, afterStrict.version, 'NACK keeps the last good version');

  // the next good change is a delta from the last ACKed version, and applies
  refuseNext = false;
  r = await postYaml(c.webPort, '/api/v1/delete', `apiVersion: weft.io/v1alpha1
kind: PeerAuthentication
metadata: { name: strict, namespace: shop }
`);
  t.same(r.body.deleted, ['PeerAuthentication shop/strict']);
  await until(() => client.config()?.workloads.find((x) => x.name === 'web-1')?.mtlsMode === 'PERMISSIVE', 5000, 'delete applied');
  t.ok(client.config()!.services.some((s) => s.name === 'api'), 'the previously NACKed service arrives with the next delta');
  await until(() => c.registry.get('node-1')?.lastReport?.ack === 'ACK', 5000, 'ACK again');
});
