// Root rotation as an operator runs it: the new trust bundle (old + new root) reaches connected agents
// over the config stream, new certificates chain to the new root, and the controller's own serving
// certificate is re-issued so an agent that trusts only the new root can connect; the open stream stays up.
import t from 'tap';
import { readFileSync } from 'node:fs';

import { ConfigClient } from '../../agent/config/client.js';
import { createSpiffeCsrPem, generateEcKeyPair, x509 } from '../../common/x509.js';
import { connectAgent, makeEnv, runController, until } from './harness.js';

t.test('rotate-root: bundle pushed to agents, serving certificate re-issued, stream kept', async (t) => {
  const env = makeEnv(t);
  const c = await runController(env);
  t.teardown(() => c.close());
  const oldRoot = c.ca.rootCertPem();
  const conn = connectAgent({ grpcPort: c.grpcPort, trustBundlePem: readFileSync(c.trustBundleFile, 'utf8'), controllerIdentity: c.controllerIdentity }, 'node-1');
  t.teardown(() => conn.close());
  let bundle = '';
  const client = new ConfigClient({ connection: conn, apply: (_cfg, b) => void (bundle = b), retryInitialMs: 50, retryMaxMs: 200 });
  t.teardown(() => client.stop());
  await client.start();
  await until(() => bundle === oldRoot, 5000, 'first config with the old root');

  const res = await fetch(`http://127.0.0.1:${c.webPort}/api/v1/ca/rotate-root`, { method: 'POST' });
  t.equal(res.status, 200);
  const body = (await res.json()) as { rootCertPem: string; trustBundlePem: string };
  t.not(body.rootCertPem, oldRoot);
  await until(() => bundle.includes(oldRoot) && bundle.includes(body.rootCertPem), 5000, 'agent receives old + new roots');
  t.equal(client.status().connected, true, 'the config stream stayed up');
  t.equal(readFileSync(c.trustBundleFile, 'utf8'), body.trustBundlePem, 'trust bundle file rewritten');

  const signed = await conn.signCsr(await createSpiffeCsrPem('spiffe://cluster.local/ns/shop/sa/web', await generateEcKeyPair()));
  const leaf = new x509.X509Certificate(signed.certChainPem);
  t.ok(await leaf.verify({ publicKey: new x509.X509Certificate(body.rootCertPem).publicKey, signatureOnly: true }), 'new leaves chain to the new root');

  const onlyNew = connectAgent({ grpcPort: c.grpcPort, trustBundlePem: body.rootCertPem, controllerIdentity: c.controllerIdentity }, 'node-2');
  t.teardown(() => onlyNew.close());
  let hello;
  for (let i = 0; i < 20 && !hello; i++) hello = await onlyNew.connect('test', 2000).catch(() => new Promise((r) => setTimeout(r, 100)).then(() => undefined));
  t.ok(hello, 'an agent trusting only the new root reaches the controller');
});
