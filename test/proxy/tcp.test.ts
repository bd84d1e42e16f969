// Opaque TCP through the proxy, same node and across the tunnel: large transfer with half-close,
// server-first protocols, a client speaking its own TLS, RST propagation, unknown connections refused,
// and the TCP metrics with source and destination labels.
import t, { type Test } from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { createHash, randomBytes } from 'node:crypto';
import { dialFrom, metricEventually, listen, metricValue, startMesh, type Mesh, type PodSpec, type ServiceSpec } from './fixtures/mesh.js';

const SIZE = 20 * 1024 * 1024;
const PODS: PodSpec[] = [
  { name: 'sleep', node: 'node-a', ip: '127.0.10.1' },
  { name: 'echo-a', node: 'node-a', ip: '127.0.10.2', sa: 'echo' },
  { name: 'echo-b', node: 'node-b', ip: '127.0.20.2', sa: 'echo' },
];

/** Reads everything until the peer's FIN. */
function readAll(s: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  });
}

// Hashes what the client sends; after the client's FIN it answers with the hash and closes: proves that
// every byte arrived, in order, and that half-close left the return direction open.
function hashServer(): net.Server {
  return net.createServer({ allowHalfOpen: true }, (s) => {
    const h = createHash('sha256');
    s.on('data', (d) => h.update(d));
    s.on('end', () => s.end(h.digest('hex')));
    s.on('error', () => {});
  });
}

// Speaks first (like SMTP): a banner before the client sends anything.
function bannerServer(): net.Server {
  return net.createServer((s) => {
    s.write('220 weft-test ready\r\n');
    s.on('data', (d) => s.end(`250 got ${d.toString().trim()}\r\n`));
    s.on('error', () => {});
  });
}

async function setup(t: Test): Promise<{ mesh: Mesh; ports: Record<string, number> }> {
  const servers = { hashA: hashServer(), hashB: hashServer(), bannerA: bannerServer(), bannerB: bannerServer() };
  const ports = {
    hashA: await listen(servers.hashA, '127.0.10.2'),
    hashB: await listen(servers.hashB, '127.0.20.2'),
    bannerA: await listen(servers.bannerA, '127.0.10.2'),
    bannerB: await listen(servers.bannerB, '127.0.20.2'),
  };
  const services: ServiceSpec[] = [
    { name: 'hash-b', vip: '127.0.97.2', port: 9000, targetPort: ports.hashB, pods: ['echo-b'] },
    { name: 'banner-b', vip: '127.0.97.3', port: 25, targetPort: ports.bannerB, pods: ['echo-b'] },
  ];
  const mesh = await startMesh(PODS, services);
  t.teardown(async () => {
    await mesh.close();
    for (const s of Object.values(servers)) s.close();
  });
  return { mesh, ports };
}


t.test('opaque TCP: 20 MB with half-close, same node (pod IP) and cross node (service VIP)', async (t) => {
  const { mesh, ports } = await setup(t);
  for (const [label, ip, port] of [
    ['same node', '127.0.10.2', ports.hashA],
    ['cross node', '127.0.97.2', 9000],
  ] as const) {
    mesh.route('sleep', ip, port);
    const s = await dialFrom('127.0.10.1', mesh.a);
    const data = randomBytes(SIZE);
    const reply = readAll(s);
    // Send in chunks honouring backpressure, then half-close.
    for (let off = 0; off < SIZE; off += 1 << 20) {
      if (!s.write(data.subarray(off, off + (1 << 20)))) await new Promise((r) => s.once('drain', r));
    }
    s.end();
    t.equal((await reply).toString(), createHash('sha256').update(data).digest('hex'), `${label}: every byte arrived and the reply came back after our FIN`);
  }
  const src = { source_workload: 'sleep', source_workload_namespace: 'default', destination_workload: 'echo-b' };
  t.equal(await metricEventually(mesh.a.registry, 'istio_tcp_connections_opened_total', { ...src, reporter: 'source', connection_security_policy: 'mutual_tls', destination_service: 'hash-b.default.svc.cluster.local' }, 1), 1);
  t.equal(await metricEventually(mesh.a.registry, 'istio_tcp_received_bytes_total', { ...src, reporter: 'source' }, SIZE), SIZE, 'source counts the request bytes');
  t.equal(await metricEventually(mesh.b.registry, 'istio_tcp_connections_opened_total', { ...src, reporter: 'destination', source_principal: mesh.spiffe('sleep') }, 1), 1, 'destination reports with the peer principal');
  t.equal(await metricEventually(mesh.b.registry, 'istio_tcp_received_bytes_total', { reporter: 'destination', destination_workload: 'echo-b' }, SIZE), SIZE);
  t.equal(await metricEventually(mesh.a.registry, 'istio_tcp_connections_opened_total', { reporter: 'source', destination_workload: 'echo-a', connection_security_policy: 'none' }, 1), 1, 'same node counted');
});

t.test('server-first protocol falls back to opaque after the sniff timeout', async (t) => {
  const { mesh, ports } = await setup(t);
  for (const [label, ip, port] of [
    ['same node', '127.0.10.2', ports.bannerA],
    ['cross node', '127.0.97.3', 25],
  ] as const) {
    mesh.route('sleep', ip, port);
    const s = await dialFrom('127.0.10.1', mesh.a);
    const banner = await new Promise<string>((r) => s.once('data', (d) => r(d.toString())));
    t.equal(banner, '220 weft-test ready\r\n', `${label}: banner arrives although the client sent nothing`);
    s.write('HELO pod\r\n');
    t.equal((await readAll(s)).toString(), '250 got HELO pod\r\n', `${label}: conversation continues`);
  }
});

t.test('a client speaking its own TLS is passed through untouched', async (t) => {
  const { mesh } = await setup(t);
  const cert = await mesh.ca.issue('spiffe://example.org/app-tls');
  const server = tls.createServer({ cert: cert.certChainPem, key: cert.keyPem }, (s) => s.end('secret hello'));
  const port = await listen(server, '127.0.20.2');
  t.teardown(() => server.close());
  mesh.route('sleep', '127.0.20.2', port);
  const raw = await dialFrom('127.0.10.1', mesh.a);
  const s = tls.connect({ socket: raw, ca: mesh.ca.certPem, checkServerIdentity: () => undefined });
  const got = await new Promise<string>((resolve, reject) => {
    let buf = '';
    s.on('data', (d) => (buf += d));
    s.on('end', () => resolve(buf));
    s.on('error', reject);
  });
  t.equal(got, 'secret hello', 'end-to-end TLS between client and server through both proxies');
  t.equal(s.getPeerCertificate().subjectaltname, 'URI:spiffe://example.org/app-tls', 'the client saw the server\'s own certificate');
});

t.test('RST from the server reaches the client as a reset, same node and cross node', async (t) => {
  const { mesh } = await setup(t);
  const server = net.createServer((s) => {
    s.once('data', () => s.resetAndDestroy());
    s.on('error', () => {});
  });
  const portA = await listen(server, '127.0.10.2');
  const serverB = net.createServer((s) => {
    s.once('data', () => s.resetAndDestroy());
    s.on('error', () => {});
  });
  const portB = await listen(serverB, '127.0.20.2');
  t.teardown(() => {
    server.close();
    serverB.close();
  });
  for (const [label, ip, port] of [
    ['same node', '127.0.10.2', portA],
    ['cross node', '127.0.20.2', portB],
  ] as const) {
    mesh.route('sleep', ip, port);
    const s = await dialFrom('127.0.10.1', mesh.a);
    s.write('boom');
    const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      s.once('error', resolve);
      s.once('close', () => resolve(undefined));
    });
    t.equal(err?.code, 'ECONNRESET', `${label}: client got ECONNRESET`);
  }
});

t.test('a connection capture did not redirect is refused and counted', async (t) => {
  const { mesh } = await setup(t);
  const err = await dialFrom('127.0.10.9', mesh.a).then(
    (s) =>
      new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
        s.once('error', resolve);
        s.once('close', () => resolve(undefined));
      }),
    // The reset can beat the client's own 'connect' on loopback.
    (e: NodeJS.ErrnoException) => e,
  );
  t.equal(err?.code, 'ECONNRESET');
  t.equal(await metricEventually(mesh.a.registry, 'weft_proxy_connections_refused_total', { direction: 'outbound', reason: 'unknown_connection' }, 1), 1);
});

t.test('appProtocol overrides detection: a declared tcp port is not sniffed, so server-first pays no delay', async (t) => {
  const server = bannerServer();
  const port = await listen(server, '127.0.20.2');
  const mesh = await startMesh(PODS, [{ name: 'smtp', vip: '127.0.97.25', port: 25, targetPort: port, pods: ['echo-b'], appProtocol: 'tcp' }], { limits: { sniffTimeoutMs: 5000 } });
  t.teardown(async () => {
    await mesh.close();
    server.close();
  });
  mesh.route('sleep', '127.0.97.25', 25);
  const t0 = Date.now();
  const s = await dialFrom('127.0.10.1', mesh.a);
  const banner = await new Promise<string>((r) => s.once('data', (d) => r(d.toString())));
  t.equal(banner, '220 weft-test ready\r\n');
  t.ok(Date.now() - t0 < 2500, `banner well before the 5 s sniff timeout (${Date.now() - t0} ms)`);
  s.destroy();
});
