// The tunnel's mTLS: TLS 1.3 only, a peer with a certificate from another CA is refused (either side), an
// expired client certificate is refused, a destination proxy proving the wrong identity is refused, and a
// policy deny on inbound closes the stream. Each refusal is counted and logged with its reason.
import t, { type Test } from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { createLogger } from '../../common/log.js';
import type { ConnectionContext } from '../../agent/pipeline/context.js';
import { sniFor } from '../../agent/proxy/spiffe.js';
import { FakeCertificateProvider, TestCA } from './fixtures/ca.js';
import { dialFrom, listen, metricEventually, startMesh, type MeshOptions, type PodSpec } from './fixtures/mesh.js';

const PODS: PodSpec[] = [
  { name: 'sleep', node: 'node-a', ip: '127.0.10.1' },
  { name: 'db', node: 'node-b', ip: '127.0.20.2' },
];

async function withMesh(t: Test, opts: MeshOptions & { logs?: string[] }) {
  const server = net.createServer((s) => s.end('hello from db'));
  const port = await listen(server, '127.0.20.2');
  const logs = opts.logs;
  const mesh = await startMesh(PODS, [], { ...opts, ...(logs ? { log: createLogger({ level: 'info', write: (l) => void logs.push(l) }) } : {}) });
  mesh.route('sleep', '127.0.20.2', port);
  t.teardown(async () => {
    await mesh.close();
    server.close();
  });
  return mesh;
}

/** What a pod sees: the server's bytes, or how the connection ended. */
async function attempt(mesh: Awaited<ReturnType<typeof withMesh>>): Promise<string> {
  const s = await dialFrom('127.0.10.1', mesh.a).catch((e: NodeJS.ErrnoException) => e);
  if (s instanceof Error) return `error:${s.code}`;
  return new Promise((resolve) => {
    let data = '';
    s.on('data', (d) => (data += d));
    s.on('end', () => resolve(data));
    s.on('error', (e: NodeJS.ErrnoException) => resolve(`error:${e.code}`));
  });
}

t.test('baseline: the tunnel works and speaks TLS 1.3 only', async (t) => {
  const mesh = await withMesh(t, {});
  t.equal(await attempt(mesh), 'hello from db');
  // A TLS 1.2 client with a valid certificate is refused by the tunnel listener.
  const cert = await mesh.ca.issue(mesh.spiffe('sleep'));
  const err = await new Promise<Error>((resolve) => {
    const s = tls.connect({ host: mesh.b.inbound.host, port: mesh.b.inbound.port, ca: mesh.ca.certPem, cert: cert.certChainPem, key: cert.keyPem, servername: sniFor(mesh.spiffe('db')), maxVersion: 'TLSv1.2', ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
    s.on('error', resolve);
    s.on('secureConnect', () => resolve(new Error('connected')));
  });
  t.not(err.message, 'connected', `TLS 1.2 refused (${err.message})`);
});

t.test('destination node with a certificate from another CA is refused by the source', async (t) => {
  const other = await TestCA.create('Other CA');
  const logs: string[] = [];
  const mesh = await withMesh(t, { logs, certs: { 'node-b': (ca) => new FakeCertificateProvider(other, ca.certPem) } });
  t.equal(await attempt(mesh), 'error:ECONNRESET', 'the pod\'s connection is reset');
  t.equal(await metricEventually(mesh.a.registry, 'weft_tunnel_handshake_failures_total', { side: 'client', reason: 'untrusted_ca' }, 1), 1);
  t.ok(logs.some((l) => l.includes('tunnel handshake refused') && l.includes('untrusted_ca')), 'a log line says why');
});

t.test('source node with a certificate from another CA is refused by the destination', async (t) => {
  const other = await TestCA.create('Other CA');
  const logs: string[] = [];
  const mesh = await withMesh(t, { logs, certs: { 'node-a': (ca) => new FakeCertificateProvider(other, ca.certPem) } });
  t.equal(await attempt(mesh), 'error:ECONNRESET');
  t.equal(await metricEventually(mesh.b.registry, 'weft_tunnel_handshake_failures_total', { side: 'server', reason: 'untrusted_ca' }, 1), 1);
  t.ok(logs.some((l) => l.includes('tunnel peer refused') && l.includes('untrusted_ca')));
});

t.test('an expired client certificate is refused', async (t) => {
  const mesh = await withMesh(t, {
    certs: {
      'node-a': async (ca) => {
        const p = new FakeCertificateProvider(ca);
        p.override('spiffe://cluster.local/ns/default/sa/sleep', ca.issue('spiffe://cluster.local/ns/default/sa/sleep', { notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) }));
        return p;
      },
    },
  });
  t.equal(await attempt(mesh), 'error:ECONNRESET');
  t.equal(await metricEventually(mesh.b.registry, 'weft_tunnel_handshake_failures_total', { side: 'server', reason: 'expired' }, 1), 1);
});

t.test('a destination proving another identity than the pod\'s is refused', async (t) => {
  const mesh = await withMesh(t, {
    certs: {
      'node-b': async (ca) => {
        const p = new FakeCertificateProvider(ca);
        // node-b answers for db's identity with a certificate naming someone else.
        p.override('spiffe://cluster.local/ns/default/sa/db', ca.issue('spiffe://cluster.local/ns/default/sa/impostor'));
        return p;
      },
    },
  });
  t.equal(await attempt(mesh), 'error:ECONNRESET');
  t.equal(await metricEventually(mesh.a.registry, 'weft_tunnel_handshake_failures_total', { side: 'client', reason: 'identity_mismatch' }, 1), 1);
});

t.test('policy hook: inbound deny closes the stream, with the verified peer identity in the context', async (t) => {
  const seen: ConnectionContext[] = [];
  const mesh = await withMesh(t, {
    stages: {
      authorizer: () => ({
        connection: (ctx) => {
          seen.push(ctx);
          return { allow: false, policy: 'test-deny' };
        },
        request: () => ({ allow: true }),
      }),
    },
  });
  t.equal(await attempt(mesh), 'error:ECONNRESET');
  t.equal(seen.length, 1);
  t.equal(seen[0]!.source.principal, mesh.spiffe('sleep'), 'principal from the peer certificate');
  t.equal(seen[0]!.source.identity, 'mtls');
  t.equal(seen[0]!.side, 'destination');
  t.equal(seen[0]!.destination?.name, 'db');
  t.equal(await metricEventually(mesh.b.registry, 'weft_proxy_connections_refused_total', { direction: 'inbound', reason: 'denied' }, 1), 1);
});
