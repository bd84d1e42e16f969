// HTTP/1.1 at L7 through the proxy: per-request load balancing over keep-alive (same node and cross node
// alternate on one client connection), chunked bodies and trailers both ways, 100-continue, WebSocket-style
// Upgrade, the 431 header limit, headers passed through untouched, and request metrics by response code.
import { roundRobinTraffic } from '../../agent/pipeline/defaults.js';
import t, { type Test } from 'tap';
import http from 'node:http';
import net from 'node:net';
import { dialFrom, listen, metricEventually, startMesh, type Mesh, type PodSpec } from './fixtures/mesh.js';

const PODS: PodSpec[] = [
  { name: 'sleep', node: 'node-a', ip: '127.0.10.1' },
  { name: 'web-a', node: 'node-a', ip: '127.0.10.2', sa: 'web' },
  { name: 'web-b', node: 'node-b', ip: '127.0.20.2', sa: 'web' },
];
const VIP = '127.0.97.10';

function webServer(pod: string): http.Server {
  const server = http.createServer((req, res) => {
    res.sendDate = false;
    if (req.url === '/raw') {
      res.setHeader('content-type', 'application/json');
      return void res.end(JSON.stringify(req.rawHeaders));
    }
    if (req.url === '/chunked') {
      // Echo the body back chunked, with a trailer carrying the request's trailer and a length.
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-echo-trailer, x-length' });
      let n = 0;
      req.on('data', (d: Buffer) => {
        n += d.length;
        res.write(d);
      });
      req.on('end', () => {
        res.addTrailers({ 'x-echo-trailer': String(req.trailers['x-client-trailer'] ?? 'none'), 'x-length': String(n) });
        res.end();
      });
      return;
    }
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => res.end(`${pod} ${req.method} ${req.url} ${body}`));
  });
  server.on('checkContinue', (req, res) => {
    res.writeContinue();
    server.emit('request', req, res);
  });
  server.on('upgrade', (req, socket, head) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    if (head.length) socket.write(head);
    socket.on('data', (d) => socket.write(`${pod}:${d}`));
    socket.on('end', () => socket.end());
  });
  return server;
}

async function setup(t: Test): Promise<{ mesh: Mesh; agent: http.Agent; request: (opts: http.RequestOptions, body?: string | ((req: http.ClientRequest) => void)) => Promise<{ res: http.IncomingMessage; body: string }> }> {
  const a = webServer('web-a');
  const b = webServer('web-b');
  const port = await listen(a, '127.0.10.2');
  await new Promise<void>((r) => b.listen(port, '127.0.20.2', r));
  // Round robin (not the LEAST_REQUEST default), so per-request endpoint choice shows as alternation.
  const mesh = await startMesh(PODS, [{ name: 'web', vip: VIP, port: 80, targetPort: port, pods: ['web-a', 'web-b'] }], { stages: { traffic: roundRobinTraffic } });
  mesh.route('sleep', VIP, 80);
  // One connection for all requests, so the test sees per-request balancing on a kept-alive connection.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(async () => {
    agent.destroy();
    await mesh.close();
    a.close();
    b.close();
  });
  const request = (opts: http.RequestOptions, body?: string | ((req: http.ClientRequest) => void)) =>
    new Promise<{ res: http.IncomingMessage; body: string }>((resolve, reject) => {
      const req = http.request({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.10.1', agent, path: '/', ...opts }, (res) => {
        let data = '';
        res.on('data', (d) => (data += d));
        res.on('end', () => resolve({ res, body: data }));
      });
      req.on('error', reject);
      if (typeof body === 'function') body(req);
      else req.end(body);
    });
  return { mesh, agent, request };
}

t.test('keep-alive connection, endpoint chosen per request (same node and cross node alternate)', async (t) => {
  const { mesh, request } = await setup(t);
  const seen: string[] = [];
  const sockets = new Set<net.Socket>();
  for (let i = 0; i < 4; i++) {
    const { res, body } = await request({ path: `/r${i}` });
    t.equal(res.statusCode, 200);
    sockets.add(res.socket);
    seen.push(body.split(' ')[0]!);
  }
  t.equal(sockets.size, 1, 'all requests used one client connection');
  t.same(new Set(seen), new Set(['web-a', 'web-b']), 'requests on one connection reached both pods');
  const labels = { reporter: 'source', source_workload: 'sleep', destination_service: 'web.default.svc.cluster.local', response_code: '200', request_protocol: 'http' };
  t.equal(await metricEventually(mesh.a.registry, 'istio_requests_total', { ...labels, destination_workload: 'web-b', connection_security_policy: 'mutual_tls' }, 2), 2, 'cross-node requests counted with mTLS');
  t.equal(await metricEventually(mesh.a.registry, 'istio_requests_total', { ...labels, destination_workload: 'web-a', connection_security_policy: 'none' }, 2), 2, 'same-node requests counted');
});

t.test('chunked bodies and trailers pass both ways', async (t) => {
  const { request } = await setup(t);
  for (let i = 0; i < 2; i++) {
    const { res, body } = await request({ method: 'POST', path: '/chunked', headers: { trailer: 'x-client-trailer' } }, (req) => {
      req.write('part one;');
      req.write('part two');
      req.addTrailers({ 'x-client-trailer': 'from-client' });
      req.end();
    });
    t.equal(res.headers['transfer-encoding'], 'chunked');
    t.equal(body, 'part one;part two');
    t.equal(res.trailers['x-echo-trailer'], 'from-client', 'request trailer reached the server');
    t.equal(res.trailers['x-length'], '17', 'response trailer reached the client');
  }
});

t.test('a Content-Length body reaches both pods intact (head and body in one vectored write upstream)', async (t) => {
  const { request } = await setup(t);
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const { res, body } = await request({ method: 'POST', path: '/form', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, `a=${i}`);
    t.equal(res.statusCode, 200);
    t.match(body, new RegExp(`^web-[ab] POST /form a=${i}$`));
    seen.add(body.split(' ')[0]!);
  }
  t.same(seen, new Set(['web-a', 'web-b']), 'same node and cross node');
});

t.test('100-continue: the body is sent only after the server said 100', async (t) => {
  const { request } = await setup(t);
  for (let i = 0; i < 2; i++) {
    let continued = false;
    const { res, body } = await request({ method: 'PUT', path: '/upload', headers: { expect: '100-continue', 'content-length': '4' } }, (req) => {
      req.on('continue', () => {
        continued = true;
        req.end('data');
      });
    });
    t.ok(continued, 'client got 100 Continue');
    t.equal(res.statusCode, 200);
    t.match(body, /^web-[ab] PUT \/upload data$/);
  }
});

t.test('headers pass untouched, nothing is added', async (t) => {
  const { mesh } = await setup(t);
  for (let i = 0; i < 2; i++) {
    const s = await dialFrom('127.0.10.1', mesh.a);
    s.write('GET /raw HTTP/1.1\r\nHost: web.default\r\nX-MiXeD-Case: Value\r\nConnection: close\r\n\r\n');
    const text = await new Promise<string>((r) => {
      let d = '';
      s.on('data', (c) => (d += c));
      s.on('end', () => r(d));
    });
    const [head, body] = text.split('\r\n\r\n');
    const raw = JSON.parse(body!) as string[];
    t.same(raw.slice(0, 4), ['Host', 'web.default', 'X-MiXeD-Case', 'Value'], 'request headers arrive in order and case');
    t.notOk(raw.some((h) => /^(via|x-forwarded|forwarded|x-envoy|x-request-id)/i.test(h)), 'no proxy headers added');
    t.notMatch(head!, /\r\ndate:/i, 'no Date added to a response that had none');
    s.destroy();
  }
});

t.test('Upgrade (WebSocket handshake) then raw bytes both ways', async (t) => {
  const { mesh } = await setup(t);
  const pods = new Set<string>();
  for (let i = 0; i < 2; i++) {
    const s = await dialFrom('127.0.10.1', mesh.a);
    s.write('GET /ws HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    const first = await new Promise<string>((r) => s.once('data', (d) => r(d.toString())));
    t.match(first, /^HTTP\/1.1 101 Switching Protocols\r\n/);
    s.write('ping');
    const echo = await new Promise<string>((r) => s.once('data', (d) => r(d.toString())));
    t.match(echo, /^web-[ab]:ping$/);
    pods.add(echo.split(':')[0]!);
    s.end();
    await new Promise((r) => s.once('close', r));
  }
  t.equal(pods.size, 2, 'upgrades were balanced too (one same node, one cross node)');
  // Each upgraded connection is counted closed once its relay ends (the e2e WebSocket checks rely on it).
  let closed = 0;
  for (let i = 0; i < 40 && closed < 2; i++) {
    const m = await mesh.a.registry.getSingleMetric('istio_tcp_connections_closed_total')?.get();
    closed = (m?.values ?? []).filter((v) => v.labels.request_protocol === 'http').reduce((n, v) => n + v.value, 0);
    if (closed < 2) await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(closed, 2, 'both upgraded connections counted as closed');
});

t.test('request headers over the limit get 431 and are counted', async (t) => {
  const { mesh, request } = await setup(t);
  const { res } = await request({ path: '/', headers: { 'x-big': 'x'.repeat(20_000) } });
  t.equal(res.statusCode, 431);
  t.equal(await metricEventually(mesh.a.registry, 'weft_proxy_connections_refused_total', { reason: 'header_too_large' }, 1), 1);
  t.equal(await metricEventually(mesh.a.registry, 'istio_requests_total', { response_code: '431' }, 1), 1);
});
