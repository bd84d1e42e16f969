// The tunnel client builds one TLS context per source identity and reuses it for every connection that
// identity opens (to any destination identity or node); a new certificate gets a new context.
import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { dialFrom, listen, startMesh, type PodSpec } from './fixtures/mesh.js';
import type { FakeCertificateProvider } from './fixtures/ca.js';

const PODS: PodSpec[] = [
  { name: 'sleep', node: 'node-a', ip: '127.0.10.1' },
  { name: 'db1', node: 'node-b', ip: '127.0.20.2', sa: 'db1' },
  { name: 'db2', node: 'node-b', ip: '127.0.20.3', sa: 'db2' },
  { name: 'db3', node: 'node-b', ip: '127.0.20.4', sa: 'db3' },
];

function read(s: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    s.on('data', (d) => (data += d));
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
}

t.test('one secure context per source identity, shared by its tunnel connections; rebuilt on a new certificate', async (t) => {
  const servers = PODS.slice(1).map((p) => net.createServer((s) => s.end(`hello from ${p.name}`)));
  const ports = await Promise.all(servers.map((s, i) => listen(s, PODS[i + 1]!.ip)));
  const mesh = await startMesh(PODS, []);
  // Count the contexts built with the client pod's certificate, whoever builds them (our pool, or tls.connect
  // itself when handed cert/key/ca per connection).
  const built: string[] = [];
  const create = tls.createSecureContext;
  tls.createSecureContext = (o) => {
    if (o?.cert) built.push(String(o.cert));
    return create(o);
  };
  t.teardown(async () => {
    tls.createSecureContext = create;
    await mesh.close();
    for (const s of servers) s.close();
  });
  const sleepId = mesh.spiffe('sleep');
  const first = (await mesh.a.certs.get(sleepId)).certChainPem;

  for (let i = 0; i < 3; i++) {
    mesh.route('sleep', PODS[i + 1]!.ip, ports[i]!);
    t.equal(await read(await dialFrom('127.0.10.1', mesh.a)), `hello from db${i + 1}`, `tunnel to db${i + 1} (its own identity, so its own connection)`);
  }
  t.equal(built.filter((c) => c === first).length, 1, 'three tunnel connections, one context with the source certificate');

  // Rotation: the provider hands out a new certificate and signals the change.
  const next = await mesh.ca.issue(sleepId);
  (mesh.a.certs as FakeCertificateProvider).override(sleepId, next);
  mesh.route('sleep', PODS[1]!.ip, ports[0]!);
  t.equal(await read(await dialFrom('127.0.10.1', mesh.a)), 'hello from db1', 'a new connection after the change works');
  t.equal(built.filter((c) => c === next.certChainPem).length, 1, 'one new context, with the new certificate');
  t.equal(built.filter((c) => c === first).length, 1, 'the old context is not rebuilt');
});

t.test('a renewed certificate drains only the tunnel connections of that identity', async (t) => {
  const pods: PodSpec[] = [
    { name: 'sleep', node: 'node-a', ip: '127.0.10.1' },
    { name: 'curl', node: 'node-a', ip: '127.0.10.2', sa: 'curl' },
    { name: 'db1', node: 'node-b', ip: '127.0.20.2', sa: 'db1' },
  ];
  const server = net.createServer((s) => s.end('hello from db1'));
  const port = await listen(server, '127.0.20.2');
  const mesh = await startMesh(pods, []);
  t.teardown(async () => {
    await mesh.close();
    server.close();
  });
  // handshakes the destination node's tunnel listener completed: one per tunnel connection
  let handshakes = 0;
  mesh.b.proxy.servers()[1]!.on('secureConnection', () => handshakes++);
  mesh.route('sleep', '127.0.20.2', port);
  mesh.route('curl', '127.0.20.2', port);
  const call = async (ip: string) => t.equal(await read(await dialFrom(ip, mesh.a)), 'hello from db1');
  await call('127.0.10.1');
  await call('127.0.10.2');
  t.equal(handshakes, 2, 'one tunnel connection per source identity');
  await call('127.0.10.1');
  await call('127.0.10.2');
  t.equal(handshakes, 2, 'reused');

  const sleepId = mesh.spiffe('sleep');
  (mesh.a.certs as FakeCertificateProvider).override(sleepId, await mesh.ca.issue(sleepId));
  await call('127.0.10.2');
  t.equal(handshakes, 2, 'curl\'s connection is untouched by sleep\'s renewal');
  await call('127.0.10.1');
  t.equal(handshakes, 3, 'sleep opens a new connection, with its new certificate');

  (mesh.a.certs as FakeCertificateProvider).setTrustBundle(mesh.a.certs.trustBundlePem());
  await call('127.0.10.1');
  await call('127.0.10.2');
  t.equal(handshakes, 5, 'a new trust bundle: every identity reconnects');
});
