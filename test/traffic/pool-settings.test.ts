// TrafficPolicy connectionPool settings of the upstream connections themselves, through real proxies on
// loopback, same node and across nodes: maxRequestsPerConnection (HTTP/1.1 requests, HTTP/2 streams per
// upstream connection), idleTimeout (a pooled connection unused this long is closed) and connectTimeout
// (a pod that never completes the handshake fails the attempt at that time, not at the proxy's 10 s).
import t, { type Test } from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { TrafficEntry } from '../../common/policy.js';
import type { CompiledConnectionPool } from '../../common/policy/traffic.js';
import { listen, startMesh, type Mesh, type PodSpec } from '../proxy/fixtures/mesh.js';
import { reusePortSocket } from '../../agent/lifecycle/reuseport.js';
import { libc } from '../../native/libc.js';

const PODS: PodSpec[] = [
  { name: 'sleep', node: 'node-a', ip: '127.0.10.1' },
  { name: 'near', node: 'node-a', ip: '127.0.10.7', sa: 'api' },
  { name: 'far', node: 'node-b', ip: '127.0.20.7', sa: 'api' },
];
const VIP = '127.0.97.50';

const policy = (service: string, pool: CompiledConnectionPool): TrafficEntry => ({
  kind: 'TrafficPolicy',
  key: `TrafficPolicy/default/${service}`,
  namespace: 'default',
  name: service,
  traffic: { service: `default/${service}`, createdMs: 0, loadBalancer: { kind: 'ROUND_ROBIN' }, problems: [], connectionPool: pool },
});

function apply(mesh: Mesh, policies: TrafficEntry[]): void {
  for (const n of [mesh.a, mesh.b]) n.state.update({ ...n.state.config, version: n.state.version + 1, policies });
}

/** An HTTP/1 and an HTTP/2 server on both pods, counting the connections each sees. */
async function servers(t: Test) {
  const conns = { h1: new Set<net.Socket>(), h2: new Set<unknown>() };
  const h1 = http.createServer((req, res) => {
    conns.h1.add(req.socket);
    res.end('ok');
  });
  const h2 = http2.createServer();
  h2.on('stream', (s) => {
    conns.h2.add(s.session);
    s.respond({ ':status': 200 });
    s.end('ok');
  });
  const port = await listen(h1, '127.0.10.7');
  const h1b = http.createServer((req, res) => {
    conns.h1.add(req.socket);
    res.end('ok');
  });
  await new Promise<void>((r) => h1b.listen(port, '127.0.20.7', r));
  const h2port = await listen(h2, '127.0.10.7');
  const h2b = http2.createServer();
  h2b.on('stream', (s) => {
    conns.h2.add(s.session);
    s.respond({ ':status': 200 });
    s.end('ok');
  });
  await new Promise<void>((r) => h2b.listen(h2port, '127.0.20.7', r));
  t.teardown(() => {
    for (const s of [h1, h1b, h2, h2b]) s.close();
  });
  return { conns, port, h2port };
}

function get(mesh: Mesh, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.10.1', path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const [pod, where] of [['near', 'same node'], ['far', 'cross node']] as const) {
  t.test(`${where}: maxRequestsPerConnection and idleTimeout on HTTP/1.1 and HTTP/2`, async (t) => {
    const { conns, port, h2port } = await servers(t);
    const mesh = await startMesh(PODS, [
      { name: 'web', vip: VIP, port: 80, targetPort: port, pods: [pod] },
      { name: 'grpc', vip: VIP, port: 81, targetPort: h2port, pods: [pod], appProtocol: 'http2' },
    ]);
    t.teardown(() => mesh.close());
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());
    mesh.route('sleep', VIP, 80);

    for (let i = 0; i < 6; i++) t.equal(await get(mesh, agent), 200);
    t.equal(conns.h1.size, 1, 'no policy: six requests on one pooled upstream connection');

    apply(mesh, [policy('web', { maxRequestsPerConnection: 2 })]);
    // the pooled connection has carried six already: it takes this one more and is closed
    t.equal(await get(mesh, agent), 200);
    conns.h1.clear();
    for (let i = 0; i < 6; i++) t.equal(await get(mesh, agent), 200);
    t.equal(conns.h1.size, 3, 'maxRequestsPerConnection 2: six requests on three upstream connections');

    apply(mesh, [policy('web', { idleTimeoutMs: 300 })]);
    conns.h1.clear();
    await get(mesh, agent);
    await get(mesh, agent);
    t.equal(conns.h1.size, 1, 'back to back: one connection');
    await sleep(700);
    await get(mesh, agent);
    t.equal(conns.h1.size, 2, 'idleTimeout 300 ms: after 700 ms idle a new connection');

    // HTTP/2: streams per upstream session
    apply(mesh, [policy('grpc', { maxRequestsPerConnection: 2 })]);
    mesh.route('sleep', VIP, 81);
    const client = http2.connect('http://grpc', { createConnection: () => net.connect({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.10.1' }) });
    t.teardown(() => client.close());
    for (let i = 0; i < 6; i++) {
      const status = await new Promise<number>((resolve, reject) => {
        const r = client.request({ ':path': '/' }, { endStream: true });
        let s = 0;
        r.on('response', (h) => (s = Number(h[':status'])));
        r.resume();
        r.on('end', () => resolve(s));
        r.on('error', reject);
      });
      t.equal(status, 200);
    }
    t.equal(conns.h2.size, 3, 'HTTP/2, maxRequestsPerConnection 2: six streams over three upstream sessions');
  });

  t.test(`${where}: connectTimeout fails a pod that never completes the handshake at that time`, async (t) => {
    // A listener nothing ever accepts on (made through the libc binding, never handed to Node): once its
    // accept queue is full the kernel drops further SYNs, so a connect hangs.
    const ip = pod === 'near' ? '127.0.10.7' : '127.0.20.7';
    const fd = reusePortSocket(ip, 0, 0);
    t.teardown(() => void libc().close(fd));
    const addr = Buffer.alloc(16);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(16);
    t.equal(libc().getsockname(fd, addr, len), 0, 'getsockname');
    const port = addr.readUInt16BE(2);
    const fillers: net.Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const s = net.connect({ host: ip, port });
      s.on('error', () => {});
      fillers.push(s);
    }
    t.teardown(() => fillers.forEach((s) => s.destroy()));
    await sleep(200);
    const mesh = await startMesh(PODS, [{ name: 'stuck', vip: VIP, port: 82, targetPort: port, pods: [pod], appProtocol: 'http' }]);
    t.teardown(() => mesh.close());
    apply(mesh, [policy('stuck', { connectTimeoutMs: 300 })]);
    mesh.route('sleep', VIP, 82);
    const t0 = Date.now();
    const status = await get(mesh, new http.Agent());
    const ms = Date.now() - t0;
    t.equal(status, 503, 'the attempt failed');
    t.ok(ms >= 250 && ms < 2500, `after the connectTimeout (${ms} ms), not the proxy's 10 s`);
  });
}
