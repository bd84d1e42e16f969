// TrafficPolicy timeouts.idle (Envoy's stream idle timeout) through real proxies on loopback, same node and
// across nodes, with the agent's router: a request whose pod never answers is ended 504 "stream timeout"
// (flag SI) after the idle time; a response that trickles a chunk more often than that completes although it
// takes several times longer in all (idle, not total); a response that stalls midway is reset; the same for
// HTTP/2; a TCP connection to the Service is reset once idle and kept while bytes flow.
import t, { type Test } from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { TrafficEntry } from '../../common/policy.js';
import { routingRouter } from '../../agent/routing/router.js';
import { listen, startMesh, type Mesh, type PodSpec } from '../proxy/fixtures/mesh.js';

const PODS: PodSpec[] = [
  { name: 'sleep', node: 'node-a', ip: '127.0.12.1' },
  { name: 'near', node: 'node-a', ip: '127.0.12.7', sa: 'api' },
  { name: 'far', node: 'node-b', ip: '127.0.22.7', sa: 'api' },
];
const VIP = '127.0.97.70';
const IDLE_MS = 300;

const policy = (name: string): TrafficEntry => ({
  kind: 'TrafficPolicy',
  key: `TrafficPolicy/default/${name}`,
  namespace: 'default',
  name,
  traffic: { service: `default/${name}`, createdMs: 0, loadBalancer: { kind: 'ROUND_ROBIN' }, problems: [], timeouts: { idleMs: IDLE_MS } },
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** /never: no answer; /trickle: 9 chunks 100 ms apart; /stall: head and one chunk, then nothing. */
function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.url === '/never') return;
  res.writeHead(200, { 'content-type': 'text/plain' });
  if (req.url === '/stall') return void res.write('first');
  let n = 0;
  const tick = setInterval(() => {
    res.write(`chunk${n}\n`);
    if (++n === 9) {
      clearInterval(tick);
      res.end();
    }
  }, 100);
  res.on('close', () => clearInterval(tick));
}

interface Got {
  status: number;
  body: string;
  cut: boolean;
  ms: number;
}

function get(mesh: Mesh, path: string): Promise<Got> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const req = http.get({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.12.1', path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, cut: false, ms: Date.now() - t0 }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body, cut: true, ms: Date.now() - t0 }));
    });
    req.on('error', () => resolve({ status: 0, body: '', cut: true, ms: Date.now() - t0 }));
  });
}

async function servers(t: Test, ip: string) {
  const h1 = http.createServer(handler);
  const port = await listen(h1, ip);
  const h2 = http2.createServer();
  h2.on('stream', (s, h) => {
    if (h[':path'] === '/never') return;
    s.respond({ ':status': 200 });
    s.end('ok');
  });
  const h2port = await listen(h2, ip);
  const tcp = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  const tcpPort = await listen(tcp, ip);
  t.teardown(() => {
    h1.closeAllConnections();
    h1.close();
    h2.close();
    tcp.close();
  });
  return { port, h2port, tcpPort };
}

for (const [pod, ip, where] of [['near', '127.0.12.7', 'same node'], ['far', '127.0.22.7', 'cross node']] as const) {
  t.test(`${where}: HTTP/1.1, HTTP/2 and TCP idle out after timeouts.idle, and only when idle`, async (t) => {
    const s = await servers(t, ip);
    const mesh = await startMesh(
      PODS,
      [
        { name: 'web', vip: VIP, port: 80, targetPort: s.port, pods: [pod], appProtocol: 'http' },
        { name: 'grpc', vip: VIP, port: 81, targetPort: s.h2port, pods: [pod], appProtocol: 'http2' },
        { name: 'raw', vip: VIP, port: 82, targetPort: s.tcpPort, pods: [pod], appProtocol: 'tcp' },
      ],
      { stages: { router: routingRouter() } },
    );
    t.teardown(() => mesh.close());
    for (const n of [mesh.a, mesh.b]) n.state.update({ ...n.state.config, version: n.state.version + 1, policies: [policy('web'), policy('grpc'), policy('raw')] });

    mesh.route('sleep', VIP, 80);
    const never = await get(mesh, '/never');
    t.same([never.status, never.body], [504, 'stream timeout'], 'no answer: 504 stream timeout');
    t.ok(never.ms >= IDLE_MS - 20, `not before the idle time (${never.ms} ms)`);
    const trickle = await get(mesh, '/trickle');
    t.same([trickle.status, trickle.cut, trickle.body.split('\n').filter(Boolean).length], [200, false, 9], 'a response with a chunk every 100 ms completes');
    t.ok(trickle.ms > 2 * IDLE_MS, `although it took ${trickle.ms} ms in all: the timeout is on idleness, not the total`);
    const stall = await get(mesh, '/stall');
    t.same([stall.status, stall.body, stall.cut], [200, 'first', true], 'a response that stalls midway is reset after the idle time');

    mesh.route('sleep', VIP, 81);
    const client = http2.connect('http://grpc', { createConnection: () => net.connect({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.12.1' }) });
    t.teardown(() => client.close());
    const h2get = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const r = client.request({ ':path': path }, { endStream: true });
        let st = 0;
        r.on('response', (h) => (st = Number(h[':status'])));
        r.resume();
        r.on('end', () => resolve(st));
        r.on('error', reject);
      });
    t.equal(await h2get('/never'), 504, 'HTTP/2: no answer, 504');
    t.equal(await h2get('/ok'), 200, 'HTTP/2: an answer passes');

    mesh.route('sleep', VIP, 82);
    const sock = net.connect({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.12.1' });
    let echoed = '';
    let closedAt = 0;
    sock.on('data', (c: Buffer) => (echoed += c.toString()));
    sock.on('error', () => {});
    sock.on('close', () => (closedAt = Date.now()));
    await new Promise((r) => sock.once('connect', r));
    let lastWrite = 0;
    for (let i = 0; i < 8; i++) {
      if (i > 0) await sleep(100);
      sock.write(`p${i};`);
      lastWrite = Date.now();
    }
    await sleep(100);
    t.equal(closedAt, 0, 'TCP: open after 800 ms while bytes flowed every 100 ms');
    t.match(echoed, /p0;.*p7;/, 'echoed');
    for (let i = 0; i < 40 && !closedAt; i++) await sleep(50);
    t.ok(closedAt > 0, 'TCP: closed once idle');
    t.ok(closedAt - lastWrite >= IDLE_MS - 50, `not before the idle time (${closedAt - lastWrite} ms after the last byte)`);
  });
}
