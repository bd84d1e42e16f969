// The controller goes away: agents keep their last config and certificates, an agent restarted meanwhile
// comes back from disk and still serves, and when the controller returns everyone catches up.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';

import { ConfigClient } from '../../agent/config/client.js';
import type { ControllerConnection } from '../../agent/config/controller-connection.js';
import { IdentityManager } from '../../agent/identity/manager.js';
import { spiffeId, type MeshConfig } from '../../common/mesh.js';
import { connectAgent, freePort, makeEnv, runController, tempDir, until } from './harness.js';

const WEB = 'spiffe://cluster.local/ns/shop/sa/web';

interface Agent {
  conn: ControllerConnection;
  identity: IdentityManager;
  config: ConfigClient;
  stop(): void;
}

/** the agent-side wiring agent/main.ts does: config drives the trust bundle and the identities wanted */
async function startAgent(stateDir: string, grpcPort: number, bundle: string, controllerIdentity: string): Promise<Agent> {
  const conn = connectAgent({ grpcPort, trustBundlePem: bundle, controllerIdentity }, 'node-1');
  const identity = new IdentityManager({ signer: conn, stateDir: join(stateDir, 'identity'), initialTrustBundlePem: bundle, retryInitialMs: 50, retryMaxMs: 300, getTimeoutMs: 3000 });
  await identity.start();
  const config = new ConfigClient({
    connection: conn,
    stateDir: join(stateDir, 'config'),
    retryInitialMs: 50,
    retryMaxMs: 300,
    apply: (cfg: MeshConfig, trustBundlePem: string) => {
      identity.setTrustBundle(trustBundlePem);
      identity.setWanted(cfg.workloads.filter((w) => w.node === 'node-1').map((w) => spiffeId(cfg.trustDomain, w.namespace, w.serviceAccount)));
    },
  });
  await config.start();
  return {
    conn,
    identity,
    config,
    stop() {
      config.stop();
      identity.stop();
      conn.close();
    },
  };
}

/** one mTLS exchange between two holders of certificates from the identity manager */
async function mtlsEcho(identity: IdentityManager): Promise<string> {
  const cert = await identity.get(WEB);
  const ca = identity.trustBundlePem();
  const srv = tls.createServer({ key: cert.keyPem, cert: cert.certChainPem, ca, requestCert: true, rejectUnauthorized: true }, (s) => s.end('pong'));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    return await new Promise<string>((resolve, reject) => {
      const c = tls.connect({ port: (srv.address() as AddressInfo).port, host: '127.0.0.1', key: cert.keyPem, cert: cert.certChainPem, ca, checkServerIdentity: () => undefined });
      let d = '';
      c.on('data', (b: Buffer) => (d += b.toString()));
      c.on('end', () => resolve(d));
      c.on('error', reject);
    });
  } finally {
    srv.close();
  }
}

t.test('controller down: last config kept, restarted agent serves from disk, catch-up on return', async (t) => {
  const env = makeEnv(t);
  env.grpcPort = await freePort();
  const agentState = tempDir(t, 'weft-agent-');
  let c = await runController(env);
  let controllerUp = true;
  t.teardown(async () => {
    if (controllerUp) await c.close();
  });
  const bundle = readFileSync(c.trustBundleFile, 'utf8');
  const identityUri = c.controllerIdentity;

  let agent = await startAgent(agentState, env.grpcPort, bundle, identityUri);
  t.teardown(() => agent.stop());
  await until(() => agent.config.config() !== undefined, 5000, 'first config');
  const cert = await agent.identity.get(WEB);
  t.equal(cert.spiffeId, WEB, 'identity for the pod on this node');
  const served = agent.config.config()!.version;

  // controller stops: the agent notices, keeps its config, traffic keeps flowing with its certificates
  await c.close();
  controllerUp = false;
  await until(() => !agent.config.status().connected, 5000, 'agent notices the controller is gone');
  t.equal(agent.config.config()!.version, served, 'last config kept');
  t.equal(await mtlsEcho(agent.identity), 'pong', 'mTLS with the held certificate while the controller is down');

  // the agent restarts while the controller is down: config and certificates come back from disk
  agent.stop();
  agent = await startAgent(agentState, env.grpcPort, bundle, identityUri);
  t.equal(agent.config.config()?.version, served, 'config from disk after restart');
  t.equal(agent.config.status().connected, false);
  const fromDisk = await agent.identity.get(WEB);
  t.equal(fromDisk.certChainPem, cert.certChainPem, 'certificate from disk, no controller needed');
  t.equal(await mtlsEcho(agent.identity), 'pong', 'the restarted agent still serves mTLS');

  // meanwhile the operator changed something; the controller comes back on the same address and root
  writeFileSync(join(env.configDir, 'extra.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: { name: api, namespace: shop }\nspec: { clusterIP: 10.97.0.11, selector: { app: web }, ports: [{ port: 80, targetPort: 8080 }] }\n');
  c = await runController(env);
  controllerUp = true;
  await until(() => agent.config.config()!.services.some((s) => s.name === 'api'), 10_000, 'agent catches up');
  t.ok(agent.config.config()!.version > served, 'newer version after catch-up');
  t.equal(agent.config.status().connected, true);
  await until(() => c.registry.get('node-1')?.lastReport?.ack === 'ACK', 5000, 'controller sees the ACK');
  const page = (await (await fetch(`http://127.0.0.1:${c.webPort}/api/v1/agents`)).json()) as { agents: { node: string; connected: boolean }[] };
  t.ok(page.agents.some((a) => a.node === 'node-1' && a.connected), 'the operator API lists the reconnected agent');
});
