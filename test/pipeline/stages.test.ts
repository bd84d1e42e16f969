// The pipeline's stage seam, exercised through real proxies on loopback: a test Authorizer deciding per
// request on the destination side (same node HTTP/1 and HTTP/2, gRPC's status), upstream pools never shared
// across source pods, the round-robin cursor surviving a config version, and the live registry closing an
// open connection that a new config version denies.
import t, { type Test } from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { ConnectionContext, RequestContext } from '../../agent/pipeline/context.js';
import { roundRobinTraffic } from '../../agent/pipeline/defaults.js';
import type { Authorizer, StageFactories } from '../../agent/pipeline/stages.js';
import { listen, startMesh, type Mesh, type PodSpec } from '../proxy/fixtures/mesh.js';

const PODS: PodSpec[] = [
  { name: 'sleep', node: 'node-a', ip: '127.0.10.1' },
  { name: 'intruder', node: 'node-a', ip: '127.0.10.3' },
  { name: 'api-a', node: 'node-a', ip: '127.0.10.2', sa: 'api' },
  { name: 'api-c', node: 'node-a', ip: '127.0.10.4', sa: 'api' },
];
const VIP = '127.0.97.20';
const VIP_RR = '127.0.97.21';
const VIP_TCP = '127.0.97.22';

/** Denies /secret to everyone, and everything to the intruder pod; records what it saw. */
function testAuthz(seen: { requests: RequestContext[]; connections: ConnectionContext[] }, denyAll = { on: false }): Partial<StageFactories> {
  const authorizer = (): Authorizer => ({
    connection(ctx) {
      seen.connections.push(ctx);
      return denyAll.on ? { allow: false, policy: 'test/deny-all' } : { allow: true };
    },
    request(ctx) {
      seen.requests.push(ctx);
      if (ctx.path.startsWith('/secret')) return { allow: false, policy: 'test/deny-secret' };
      if (ctx.source.workload?.name === 'intruder' && ctx.path.startsWith('/private')) return { allow: false, policy: 'test/deny-intruder' };
      return { allow: true };
    },
  });
  return { authorizer };
}

async function setup(t: Test, stages: Partial<StageFactories>) {
  const h1 = http.createServer((req, res) => {
    res.setHeader('x-pod', req.socket.localAddress ?? '');
    res.end(`ok ${req.url}`);
  });
  const h2 = http2.createServer();
  h2.on('stream', (s, h) => {
    // The upstream connection's client port identifies which pooled session carried the stream.
    s.respond({ ':status': 200, 'x-conn': String(s.session?.socket?.remotePort ?? 0) });
    s.end(`ok ${h[':path']}`);
  });
  const tcp = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  const port = await listen(h1, '127.0.10.2');
  await new Promise<void>((r) => h1.listen(port, '127.0.10.4', r)).catch(() => {});
  const h2port = await listen(h2, '127.0.10.2');
  const tcpPort = await listen(tcp, '127.0.10.2');
  const h1c = http.createServer((req, res) => {
    res.setHeader('x-pod', 'api-c');
    res.end('ok');
  });
  await new Promise<void>((r) => h1c.listen(port, '127.0.10.4', r));
  const mesh = await startMesh(
    PODS,
    [
      { name: 'api', vip: VIP, port: 80, targetPort: port, pods: ['api-a'] },
      { name: 'api-h2', vip: VIP, port: 81, targetPort: h2port, pods: ['api-a'], appProtocol: 'http2' },
      { name: 'api-rr', vip: VIP_RR, port: 80, targetPort: port, pods: ['api-a', 'api-c'] },
      { name: 'api-tcp', vip: VIP_TCP, port: 90, targetPort: tcpPort, pods: ['api-a'], appProtocol: 'tcp' },
    ],
    { stages },
  );
  t.teardown(async () => {
    await mesh.close();
    h1.close();
    h1c.close();
    h2.close();
    tcp.close();
  });
  return { mesh };
}

function get(mesh: Mesh, from: string, vip: string, port: number, path: string): Promise<{ status: number; body: string; pod: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: from, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, pod: String(res.headers['x-pod'] ?? '') }));
    });
    void vip;
    void port;
    req.on('error', reject);
  });
}

function h2get(session: http2.ClientHttp2Session, path: string, grpc = false): Promise<{ status: number; conn: string; grpcStatus: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path, ...(grpc ? { 'content-type': 'application/grpc', te: 'trailers' } : {}) }, { endStream: true });
    let status = 0;
    let conn = '';
    let grpcStatus: string | undefined;
    let body = '';
    req.on('response', (h) => {
      status = Number(h[':status']);
      conn = String(h['x-conn'] ?? '');
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
    });
    req.on('data', (d) => (body += d));
    req.on('end', () => resolve({ status, conn, grpcStatus, body }));
    req.on('error', reject);
  });
}

function h2session(mesh: Mesh, from: string): http2.ClientHttp2Session {
  return http2.connect('http://api', { createConnection: () => net.connect({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: from }) });
}

t.test('same node HTTP/1: the destination half authorizes each request, on the parsed request', async (t) => {
  const seen = { requests: [] as RequestContext[], connections: [] as ConnectionContext[] };
  const { mesh } = await setup(t, testAuthz(seen));
  mesh.route('sleep', VIP, 80);
  const ok = await get(mesh, '127.0.10.1', VIP, 80, '/public');
  t.equal(ok.status, 200);
  t.equal(ok.body, 'ok /public');
  const denied = await get(mesh, '127.0.10.1', VIP, 80, '/secret/x');
  t.equal(denied.status, 403);
  t.equal(denied.body, 'RBAC: access denied');
  const r = seen.requests.find((c) => c.path === '/secret/x')!;
  t.equal(r.method, 'GET');
  t.equal(r.protocol, 'http1');
  t.equal(r.source.principal, mesh.spiffe('sleep'), 'source identity from the cgroup, not the address');
  t.equal(r.source.identity, 'cgroup');
  t.equal(r.destination?.name, 'api-a', 'destination pod is the picked endpoint');
  t.equal(r.header('host'), `${mesh.a.outbound.host}:${mesh.a.outbound.port}`);
  t.equal(r.outcome.policyName, 'test/deny-secret');
  t.equal(r.outcome.status, 403);
  t.ok(r.outcome.flags.includes('UAEX'));
});

t.test('same node HTTP/2 and gRPC: per-stream decisions; gRPC gets PERMISSION_DENIED', async (t) => {
  const seen = { requests: [] as RequestContext[], connections: [] as ConnectionContext[] };
  const { mesh } = await setup(t, testAuthz(seen));
  mesh.route('sleep', VIP, 81);
  const s = h2session(mesh, '127.0.10.1');
  t.teardown(() => s.close());
  t.equal((await h2get(s, '/open')).status, 200);
  t.equal((await h2get(s, '/secret')).status, 403);
  const g = await h2get(s, '/secret.Svc/Call', true);
  t.equal(g.status, 200);
  t.equal(g.grpcStatus, '7', 'grpc-status PERMISSION_DENIED in a trailers-only response');
  t.equal(seen.requests.at(-1)!.protocol, 'grpc');
  t.equal((await h2get(s, '/open2')).status, 200, 'the session still works after denials');
});

t.test('upstream HTTP/2 sessions are never shared across source pods', async (t) => {
  const seen = { requests: [] as RequestContext[], connections: [] as ConnectionContext[] };
  const { mesh } = await setup(t, testAuthz(seen));
  mesh.route('sleep', VIP, 81);
  mesh.route('intruder', VIP, 81);
  const a = h2session(mesh, '127.0.10.1');
  const b = h2session(mesh, '127.0.10.3');
  t.teardown(() => {
    a.close();
    b.close();
  });
  const first = await h2get(a, '/one');
  const second = await h2get(a, '/two');
  t.equal(first.status, 200);
  t.equal(first.conn, second.conn, 'one source reuses its pooled session');
  const other = await h2get(b, '/one');
  t.equal(other.status, 200);
  t.not(other.conn, first.conn, 'the other pod gets its own upstream session');
  t.equal((await h2get(a, '/private')).status, 200);
  t.equal((await h2get(b, '/private')).status, 403, 'decided for the intruder, not inherited from the session sleep opened');
  const byPool = seen.requests.filter((r) => r.path === '/one').map((r) => r.source.poolKey);
  t.equal(new Set(byPool).size, 2, 'distinct pool keys per source pod');
});

t.test('HTTP/1 upstream sockets are pooled per source pod', async (t) => {
  const { mesh } = await setup(t, {
    authorizer: () => ({ connection: () => ({ allow: true }), request: () => ({ allow: true }) }),
  });
  const ports = new Set<string>();
  const srv = http.createServer((req, res) => res.end(String(req.socket.remotePort)));
  const port = await listen(srv, '127.0.10.2');
  t.teardown(() => srv.close());
  // Call the pod directly by IP (no Service): both sources hit the same endpoint.
  mesh.route('sleep', '127.0.10.2', port);
  mesh.route('intruder', '127.0.10.2', port);
  for (const from of ['127.0.10.1', '127.0.10.3', '127.0.10.1', '127.0.10.3']) {
    const r = await get(mesh, from, '', 0, '/');
    ports.add(`${from}>${r.body}`);
  }
  const bySource = new Map<string, Set<string>>();
  for (const e of ports) {
    const [from, p] = e.split('>') as [string, string];
    if (!bySource.has(from)) bySource.set(from, new Set());
    bySource.get(from)!.add(p);
  }
  const a = [...bySource.get('127.0.10.1')!];
  const b = [...bySource.get('127.0.10.3')!];
  t.ok(a.every((p) => !b.includes(p)), `no upstream socket used by both sources (${a} vs ${b})`);
});

t.test('round-robin cursor survives a config version', async (t) => {
  const { mesh } = await setup(t, { traffic: roundRobinTraffic });
  mesh.route('sleep', VIP_RR, 80);
  const seq: string[] = [];
  for (let i = 0; i < 3; i++) {
    seq.push((await get(mesh, '127.0.10.1', VIP_RR, 80, '/')).pod);
    // A new version between every request: a cursor reset would send every request to the same pod.
    mesh.a.state.update({ ...mesh.a.state.config, version: mesh.a.state.version + 1 });
  }
  t.not(seq[0], seq[1], `alternates across versions: ${seq.join(',')}`);
  t.equal(seq[0], seq[2]);
});

t.test('live policy: an open same-node TCP connection is closed when a new version denies it', async (t) => {
  const seen = { requests: [] as RequestContext[], connections: [] as ConnectionContext[] };
  const denyAll = { on: false };
  const { mesh } = await setup(t, testAuthz(seen, denyAll));
  mesh.route('sleep', VIP_TCP, 90);
  const s = net.connect({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.10.1' });
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  s.write('ping');
  const echoed = await new Promise<string>((r) => s.once('data', (d) => r(String(d))));
  t.equal(echoed, 'ping');
  t.equal(mesh.a.proxy.pipeline.live.size, 1, 'the admitted connection is registered');
  denyAll.on = true;
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  mesh.a.state.update({ ...mesh.a.state.config, version: mesh.a.state.version + 1 });
  await closed;
  t.equal(mesh.a.proxy.pipeline.live.size, 0);
  t.ok(seen.connections.length >= 2, 'evaluated at connect and again at the new version');
});
