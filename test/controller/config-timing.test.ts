// The timing of a config change, both sides, over real gRPC/TLS on loopback: the controller's
// weft_controller_config_* histograms (wait, build, roundtrip, propagation) count a snapshot and a delta, the
// agent's client times each update (receive, merge, apply, total), a NACK is timed and counted as one, and
// a change applied through the API reaches the agent without waiting for the publisher's debounce.
import t from 'tap';
import { readFileSync } from 'node:fs';

import { ConfigClient, type ConfigApplyTiming } from '../../agent/config/client.js';
import { connectAgent, makeEnv, postYaml, runController, until } from './harness.js';

const strict = (mode: string) => `apiVersion: weft.io/v1alpha1
kind: PeerAuthentication
metadata: { name: strict, namespace: shop }
spec: { mtls: { mode: ${mode} } }
`;

async function histogram(port: number, name: string, labels = ''): Promise<{ count: number; sum: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const value = (suffix: string) => {
    const m = new RegExp(`^${name}_${suffix}${labels ? `\\{${labels}\\}` : ''} ([0-9.e+-]+)$`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };
  return { count: value('count'), sum: value('sum') };
}

t.test('a change is timed on the controller and on the agent', async (t) => {
  const env = makeEnv(t);
  // a debounce no test waits for: a lone change must not wait for it
  const c = await runController(env, { debounceMs: 60_000 });
  t.teardown(() => c.close());
  const conn = connectAgent({ grpcPort: c.grpcPort, trustBundlePem: readFileSync(c.trustBundleFile, 'utf8'), controllerIdentity: c.controllerIdentity }, 'node-1');
  t.teardown(() => conn.close());
  const timings: ConfigApplyTiming[] = [];
  let refuse = false;
  const client = new ConfigClient({
    connection: conn,
    apply: () => {
      if (refuse) throw new Error('test refusal');
    },
    timed: (x) => timings.push(x),
    retryInitialMs: 50,
  });
  t.teardown(() => client.stop());
  await client.start();
  await until(() => timings.length > 0, 5000, 'the snapshot');
  t.match(timings[0], { snapshot: true, accepted: true }, 'the snapshot is timed');
  await until(() => c.registry.get('node-1')?.lastReport?.ack === 'ACK', 5000, 'ACK recorded');
  t.equal((await histogram(c.webPort, 'weft_controller_config_roundtrip_seconds', 'kind="snapshot",result="ack"')).count, 1, 'the snapshot\'s roundtrip');

  const v0 = client.status().configVersion;
  const sent = performance.now();
  t.equal((await postYaml(c.webPort, '/api/v1/apply', strict('STRICT'))).status, 200);
  await until(() => client.status().configVersion > v0, 5000, 'the delta');
  const inForce = performance.now() - sent;
  t.ok(inForce < 1000, `in force on the agent ${inForce.toFixed(1)} ms after the API call`);
  const delta = timings.at(-1)!;
  t.match(delta, { snapshot: false, accepted: true });
  t.ok(delta.totalMs >= delta.applyMs && delta.totalMs >= delta.mergeMs && delta.receiveMs >= 0, `receive ${delta.receiveMs} merge ${delta.mergeMs} apply ${delta.applyMs} total ${delta.totalMs} ms`);

  await until(() => c.registry.get('node-1')?.lastReport?.configVersion === client.status().configVersion, 5000, 'the delta ACKed');
  const prop = await histogram(c.webPort, 'weft_controller_config_propagation_seconds', 'result="ack"');
  t.equal(prop.count, 1, 'one delta propagated');
  t.ok(prop.sum >= 0 && prop.sum < 1, `propagation ${(prop.sum * 1000).toFixed(1)} ms`);
  t.ok((await histogram(c.webPort, 'weft_controller_config_build_seconds')).count >= 1, 'the version\'s translation');
  t.ok((await histogram(c.webPort, 'weft_controller_config_wait_seconds')).count >= 1, 'its wait');

  // a refused update is timed and counted as a NACK
  refuse = true;
  t.equal((await postYaml(c.webPort, '/api/v1/apply', strict('PERMISSIVE'))).status, 200);
  await until(() => c.registry.get('node-1')?.lastReport?.ack === 'NACK', 5000, 'NACK recorded');
  t.match(timings.at(-1), { snapshot: false, accepted: false });
  t.equal((await histogram(c.webPort, 'weft_controller_config_propagation_seconds', 'result="nack"')).count, 1, 'the NACK timed apart');
});
