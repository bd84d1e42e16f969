// The destination half per request across nodes: a tunnel stream that carries HTTP/1 or HTTP/2 is parsed
// on the destination's node, each request decided there (never by the source's proxy) and reported with
// reporter="destination"; a denial answers 403 / PERMISSION_DENIED without reaching the pod and without
// closing the caller's connection; an open HTTP/2 stream is reset when a new config version denies it; a
// WebSocket-style Upgrade is decided as a request; a pod that refuses still fails the stream at the source.
import t, { type Test } from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { RequestContext } from '../../agent/pipeline/context.js';
import type { Authorizer, StageFactories } from '../../agent/pipeline/stages.js';
import { listen, metricEventually, startMesh, type Mesh, type PodSpec } from '../proxy/fixtures/mesh.js';

const PODS: PodSpec[] = [
  { name: 'sleep', node: 'node-a', ip: '127.0.10.1' },
  { name: 'intruder', node: 'node-a', ip: '127.0.10.3' },
  { name: 'api-b', node: 'node-b', ip: '127.0.20.5', sa: 'api' },
];
const VIP = '127.0.97.30';

interface Seen {
  requests: RequestContext[];
  connections: number;
}

/** Denies /secret to all, /private to the intruder, and everything once `deny.all` is set. */
function testAuthz(seen: Seen, deny = { all: false }): Partial<StageFactories> {
  const authorizer = (): Authorizer => ({
    connection() {
      seen.connections++;
      return { allow: true };
    },
    request(ctx) {
      seen.requests.push(ctx);
      if (deny.all) return { allow: false, policy: 'test/deny-all' };
      if (ctx.path.startsWith('/secret')) return { allow: false, policy: 'test/deny-secret' };
      if (ctx.source.principal?.endsWith('/sa/intruder') && ctx.path.startsWith('/private')) return { allow: false, policy: 'test/deny-intruder' };
      return { allow: true };
    },
  });
  return { authorizer };
}

async function setup(t: Test, stages: Partial<StageFactories>) {
  const hits: string[] = [];
  const h1 = http.createServer((req, res) => {
    hits.push(`${req.url} from ${req.socket.remoteAddress}`);
    res.end(`ok ${req.url}`);
  });
  h1.on('upgrade', (req, socket) => {
    hits.push(`upgrade ${req.url}`);
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (d) => socket.write(`echo:${d}`));
    socket.on('end', () => socket.end());
  });
  const h2 = http2.createServer();
  h2.on('stream', (s, h) => {
    hits.push(`h2 ${h[':path']}`);
    if (h[':path'] === '/slow') {
      // A long response: one chunk now, the rest never (the test's policy change must end it).
      s.respond({ ':status': 200 });
      s.write('first');
      return;
    }
    s.respond({ ':status': 200 });
    s.end(`ok ${h[':path']}`);
  });
  const port = await listen(h1, '127.0.20.5');
  const h2port = await listen(h2, '127.0.20.5');
  // A port where nothing listens (bound then closed).
  const dead = net.createServer();
  const deadPort = await listen(dead, '127.0.20.5');
  dead.close();
  const mesh = await startMesh(
    PODS,
    [
      { name: 'api', vip: VIP, port: 80, targetPort: port, pods: ['api-b'] },
      { name: 'api-h2', vip: VIP, port: 81, targetPort: h2port, pods: ['api-b'], appProtocol: 'http2' },
      { name: 'api-dead', vip: VIP, port: 82, targetPort: deadPort, pods: ['api-b'], appProtocol: 'http' },
    ],
    { stages },
  );
  t.teardown(async () => {
    await mesh.close();
    h1.close();
    h2.close();
  });
  return { mesh, hits };
}

function request(mesh: Mesh, agent: http.Agent, from: string, path: string): Promise<{ status: number; body: string; port: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: from, path, agent }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, port: req.socket?.localPort ?? 0 }));
    });
    req.on('error', reject);
  });
}

function h2get(session: http2.ClientHttp2Session, path: string, grpc = false): Promise<{ status: number; grpcStatus: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path, ...(grpc ? { 'content-type': 'application/grpc', te: 'trailers' } : {}) }, { endStream: true });
    let status = 0;
    let grpcStatus: string | undefined;
    let body = '';
    req.on('response', (h) => {
      status = Number(h[':status']);
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
    });
    req.on('trailers', (h) => {
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
    });
    req.on('data', (d) => (body += d));
    req.on('end', () => resolve({ status, grpcStatus, body }));
    req.on('error', reject);
  });
}

function h2session(mesh: Mesh, from: string): http2.ClientHttp2Session {
  return http2.connect('http://api', { createConnection: () => net.connect({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: from }) });
}

t.test('HTTP/1 across nodes: each request on a kept-alive connection is decided at the destination', async (t) => {
  const seen: Seen = { requests: [], connections: 0 };
  const { mesh, hits } = await setup(t, testAuthz(seen));
  mesh.route('sleep', VIP, 80);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const a = await request(mesh, agent, '127.0.10.1', '/public');
  t.equal(a.status, 200);
  t.equal(a.body, 'ok /public');
  const d = await request(mesh, agent, '127.0.10.1', '/secret/x');
  t.equal(d.status, 403);
  t.equal(d.body, 'RBAC: access denied');
  const b = await request(mesh, agent, '127.0.10.1', '/public2');
  t.equal(b.status, 200, 'the connection survives a denied request');
  t.equal(b.port, a.port, 'all three on one client connection');
  t.same(
    hits.map((h) => h.split(' from ')[0]),
    ['/public', '/public2'],
    'the pod never saw the denied request',
  );
  t.equal(seen.connections, 0, 'an HTTP stream is not decided as a connection');
  const r = seen.requests.find((c) => c.path === '/secret/x')!;
  t.ok(r, 'the destination authorizer saw the request');
  t.equal(r.side, 'destination');
  t.equal(r.protocol, 'http1');
  t.equal(r.source.identity, 'mtls', 'source known by its tunnel certificate');
  t.equal(r.source.principal, mesh.spiffe('sleep'));
  t.equal(r.source.ip, '127.0.10.1', 'source address from the peer proxy, believed for its own pod');
  t.equal(r.destination?.name, 'api-b');
  t.equal(r.outcome.policyName, 'test/deny-secret');
  t.ok(r.outcome.flags.includes('UAEX'));
  t.equal(seen.requests.length, 3, 'decided once each, on the destination only');
  t.equal(await metricEventually(mesh.b.registry, 'istio_requests_total', { reporter: 'destination', response_code: '403', destination_workload: 'api-b' }, 1), 1, 'denial reported by the destination');
  t.equal(await metricEventually(mesh.b.registry, 'istio_requests_total', { reporter: 'destination', response_code: '200', connection_security_policy: 'mutual_tls' }, 2), 2);
  t.equal(await metricEventually(mesh.a.registry, 'istio_requests_total', { reporter: 'source', response_code: '403' }, 1), 1, 'and by the source');
});

t.test('HTTP/1 across nodes: decided per source pod, never inherited from a pooled stream', async (t) => {
  const seen: Seen = { requests: [], connections: 0 };
  const { mesh } = await setup(t, testAuthz(seen));
  mesh.route('sleep', VIP, 80);
  mesh.route('intruder', VIP, 80);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  t.equal((await request(mesh, agent, '127.0.10.1', '/private')).status, 200);
  t.equal((await request(mesh, new http.Agent(), '127.0.10.3', '/private')).status, 403);
  t.equal((await request(mesh, agent, '127.0.10.1', '/private')).status, 200);
  const principals = seen.requests.map((r) => r.source.principal);
  t.same(principals, [mesh.spiffe('sleep'), mesh.spiffe('intruder'), mesh.spiffe('sleep')]);
});

t.test('HTTP/2 and gRPC across nodes: per-stream decisions at the destination; gRPC gets PERMISSION_DENIED', async (t) => {
  const seen: Seen = { requests: [], connections: 0 };
  const { mesh, hits } = await setup(t, testAuthz(seen));
  mesh.route('sleep', VIP, 81);
  const s = h2session(mesh, '127.0.10.1');
  t.teardown(() => s.close());
  t.equal((await h2get(s, '/open')).status, 200);
  const denied = await h2get(s, '/secret');
  t.equal(denied.status, 403);
  t.equal(denied.body, 'RBAC: access denied');
  const g = await h2get(s, '/secret.Svc/Call', true);
  t.equal(g.status, 200);
  t.equal(g.grpcStatus, '7', 'grpc-status PERMISSION_DENIED');
  t.equal((await h2get(s, '/open2')).status, 200, 'the session still works after denials');
  t.same(hits, ['h2 /open', 'h2 /open2'], 'the pod saw only the allowed streams');
  const last = seen.requests.at(-2)!;
  t.equal(last.protocol, 'grpc');
  t.equal(last.side, 'destination');
  t.equal(last.source.principal, mesh.spiffe('sleep'));
  t.equal(await metricEventually(mesh.b.registry, 'istio_requests_total', { reporter: 'destination', response_code: '200', request_protocol: 'grpc' }, 1), 1, 'the gRPC denial reported by the destination');
});

t.test('live: an open HTTP/2 stream across nodes is reset when a new version denies it', async (t) => {
  const seen: Seen = { requests: [], connections: 0 };
  const deny = { all: false };
  const { mesh } = await setup(t, testAuthz(seen, deny));
  mesh.route('sleep', VIP, 81);
  const s = h2session(mesh, '127.0.10.1');
  t.teardown(() => s.destroy());
  const req = s.request({ ':path': '/slow' }, { endStream: true });
  const first = await new Promise<string>((resolve) => req.once('data', (d: Buffer) => resolve(String(d))));
  t.equal(first, 'first', 'the stream is open and streaming');
  const closed = new Promise<number>((resolve) => req.once('close', () => resolve(req.rstCode ?? 0)));
  req.on('error', () => {});
  deny.all = true;
  const t0 = Date.now();
  mesh.b.state.update({ ...mesh.b.state.config, version: mesh.b.state.version + 1 });
  const code = await closed;
  t.ok(Date.now() - t0 < 1000, 'closed within 1 s');
  t.not(code, 0, `reset (code ${code}), not ended cleanly`);
  t.equal((await h2get(h2session(mesh, '127.0.10.1'), '/open')).status, 403, 'new streams are denied');
});

t.test('Upgrade across nodes is decided as a request at the destination', async (t) => {
  const seen: Seen = { requests: [], connections: 0 };
  const { mesh, hits } = await setup(t, testAuthz(seen));
  mesh.route('sleep', VIP, 80);
  const upgrade = (path: string) =>
    new Promise<string>((resolve, reject) => {
      const c = net.connect({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.10.1' });
      let got = '';
      c.on('data', (d) => {
        got += d;
        if (got.includes('\r\n\r\n') && got.startsWith('HTTP/1.1 101') && !got.includes('echo:')) c.write('ping');
        if (got.includes('echo:ping')) c.end();
      });
      c.on('close', () => resolve(got));
      c.on('error', reject);
      c.write(`GET ${path} HTTP/1.1\r\nHost: api\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`);
    });
  const ok = await upgrade('/ws');
  t.match(ok, /^HTTP\/1\.1 101/);
  t.match(ok, /echo:ping/, 'bytes flow both ways after the upgrade');
  const denied = await upgrade('/secret/ws');
  t.match(denied, /^HTTP\/1\.1 403/);
  t.notOk(hits.includes('upgrade /secret/ws'), 'the denied upgrade never reached the pod');
  t.ok(seen.requests.some((r) => r.path === '/secret/ws' && r.side === 'destination'));
});

t.test('a pod that refuses the connection fails the stream at the source (503, no parse at the destination)', async (t) => {
  const seen: Seen = { requests: [], connections: 0 };
  const { mesh } = await setup(t, testAuthz(seen));
  mesh.route('sleep', VIP, 82);
  const r = await request(mesh, new http.Agent(), '127.0.10.1', '/x');
  t.equal(r.status, 503);
  t.equal(seen.requests.length, 0, 'no request was parsed at the destination');
});
