// Access logs through real proxies on loopback: opted-in pods get one JSON line per request (outbound on the
// caller's node, inbound on the destination's, both from one proxy on the same node) and per TCP connection,
// with ztunnel's connection fields, the HTTP fields, the deciding policy and the caller's trace id; pods that
// did not opt in get nothing; the controller resolves the annotation (Pod over Namespace) and refuses values
// it does not act on.
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { createLogger } from '../../common/log.js';
import type { MeshConfig } from '../../common/mesh.js';
import { accessLogObserver, traceId } from '../../agent/observe/access-log.js';
import type { Authorizer } from '../../agent/pipeline/stages.js';
import { RequestContext, newConnectionContext, sourceFromPeer } from '../../agent/pipeline/context.js';
import { listen, startMesh, type PodSpec } from '../proxy/fixtures/mesh.js';
import { checkAccessLogAnnotation } from '../../controller/store/semantics/access-log.js';
import { workloadOf, MtlsIndex } from '../../controller/translate/objects.js';
import type { KubeObject } from '../../controller/sources/types.js';
import { runningPod } from '../helpers/kube-objects.js';

const PODS: PodSpec[] = [
  { name: 'sleep', node: 'node-a', ip: '127.0.10.1' },
  { name: 'quiet', node: 'node-a', ip: '127.0.10.3' },
  { name: 'api-a', node: 'node-a', ip: '127.0.10.2', sa: 'api' },
  { name: 'api-b', node: 'node-b', ip: '127.0.20.6', sa: 'api' },
];
const VIP_A = '127.0.97.40';
const VIP_B = '127.0.97.41';
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

t.test('request and connection lines, outbound and inbound, same node and across nodes', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: 'info', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  const authorizer = (): Authorizer => ({ connection: () => ({ allow: true }), request: (ctx) => (ctx.path === '/secret' ? { allow: false, policy: 'default/deny-secret' } : { allow: true }) });
  const srv = http.createServer((req, res) => res.end(`ok ${req.url}`));
  const port = await listen(srv, '127.0.10.2');
  await new Promise<void>((r) => srv.listen(port, '127.0.20.6', r)).catch(() => {});
  const srvB = http.createServer((req, res) => res.end(`ok ${req.url}`));
  await new Promise<void>((r) => srvB.listen(port, '127.0.20.6', r));
  const echo = net.createServer((s) => s.pipe(s));
  const tcpPort = await listen(echo, '127.0.20.6');
  const mesh = await startMesh(
    PODS,
    [
      { name: 'api', vip: VIP_A, port: 80, targetPort: port, pods: ['api-a'] },
      { name: 'api-far', vip: VIP_B, port: 80, targetPort: port, pods: ['api-b'] },
      { name: 'echo', vip: VIP_B, port: 90, targetPort: tcpPort, pods: ['api-b'], appProtocol: 'tcp' },
    ],
    { stages: { authorizer, observers: [accessLogObserver(log.child('access'))] } },
  );
  t.teardown(async () => {
    await mesh.close();
    srv.close();
    srvB.close();
    echo.close();
  });
  // sleep and both api pods opt in; quiet does not
  const cfg: MeshConfig = { ...mesh.config, version: 2, workloads: mesh.config.workloads.map((w) => (w.name === 'quiet' ? w : { ...w, accessLog: 'json' as const })) };
  // a kept-alive connection opened before the opt-in: its requests are logged from then on
  const agentBefore = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agentBefore.destroy());
  mesh.route('sleep', VIP_B, 80);
  const early = () =>
    new Promise<number>((resolve, reject) => {
      const req = http.get({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.10.1', path: '/early', agent: agentBefore }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    });
  t.equal(await early(), 200);
  t.equal(lines.length, 0, 'nothing logged before the opt-in');
  mesh.a.state.update(cfg);
  mesh.b.state.update(cfg);
  t.equal(await early(), 200);
  await new Promise((r) => setTimeout(r, 100));
  t.same(lines.filter((l) => l.path === '/early').map((l) => [l.node, l.direction]).sort(), [['node-a', 'outbound'], ['node-b', 'inbound']], 'the connection from before the opt-in is logged on both nodes');

  const get = (from: string, path: string, headers: Record<string, string> = {}) =>
    new Promise<number>((resolve, reject) => {
      const req = http.get({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: from, path, agent: false, headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    });
  const settle = () => new Promise((r) => setTimeout(r, 100));

  mesh.route('sleep', VIP_B, 80);
  t.equal(await get('127.0.10.1', '/x?y=1', { traceparent: `00-${TRACE}-00f067aa0ba902b7-01` }), 200);
  await settle();
  const out = lines.find((l) => l.msg === 'request' && l.direction === 'outbound' && l.path === '/x?y=1')!;
  const inn = lines.find((l) => l.msg === 'request' && l.direction === 'inbound' && l.path === '/x?y=1')!;
  t.ok(out, 'the caller\'s node logged it outbound');
  t.ok(inn, 'the destination\'s node logged it inbound');
  t.equal(out.component, 'access');
  t.equal(out.node, 'node-a');
  t.equal(inn.node, 'node-b');
  t.match(out, { 'src.addr': '127.0.10.1', 'src.workload': 'sleep', 'src.namespace': 'default', 'src.identity': mesh.spiffe('sleep'), 'dst.workload': 'api-b', 'dst.identity': mesh.spiffe('api-b'), 'dst.service': 'api-far.default.svc.cluster.local', 'dst.addr': `127.0.20.6:${port}`, method: 'GET', status: 200, response_flags: '-', trace_id: TRACE, protocol: 'http1' });
  t.match(inn, { 'src.identity': mesh.spiffe('sleep'), 'src.addr': '127.0.10.1', 'dst.workload': 'api-b', status: 200, trace_id: TRACE });
  t.ok(typeof out.duration_ms === 'number' && (out.duration_ms as number) >= 0);

  // same node, denied: one proxy writes both lines; the policy that decided is named
  mesh.route('sleep', VIP_A, 80);
  t.equal(await get('127.0.10.1', '/secret', { 'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7' }), 403);
  await settle();
  const denied = lines.filter((l) => l.path === '/secret');
  t.same(denied.map((l) => [l.node, l.direction, l.status, l.policy, l.response_flags, l.trace_id]), [
    ['node-a', 'outbound', 403, 'default/deny-secret', 'UAEX', '80f198ee56343ba864fe8b2a57d3eff7'],
    ['node-a', 'inbound', 403, 'default/deny-secret', 'UAEX', '80f198ee56343ba864fe8b2a57d3eff7'],
  ]);

  // a pod that did not opt in calling one that did: only the inbound line
  mesh.route('quiet', VIP_A, 80);
  t.equal(await get('127.0.10.3', '/from-quiet'), 200);
  await settle();
  t.same(lines.filter((l) => l.path === '/from-quiet').map((l) => l.direction), ['inbound']);

  // TCP across nodes: a connection line on each side, with the bytes
  mesh.route('sleep', VIP_B, 90);
  await new Promise<void>((resolve, reject) => {
    const s = net.connect({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.10.1' });
    s.on('data', () => s.end());
    s.on('close', () => resolve());
    s.on('error', reject);
    s.write('hello');
  });
  await settle();
  const conns = lines.filter((l) => l.msg === 'connection');
  t.same(conns.map((l) => [l.node, l.direction, l['dst.workload'], l.bytes_recv, l.bytes_sent]).sort(), [
    ['node-a', 'outbound', 'api-b', 5, 5],
    ['node-b', 'inbound', 'api-b', 5, 5],
  ], 'both sides, five bytes each way');
});

t.test('no pod opted in: the observer has nothing to call', async (t) => {
  const obs = accessLogObserver(createLogger({ write: () => t.fail('nothing may be written') }));
  const input = { config: { workloads: [{ node: 'n1', accessLog: undefined }] }, state: { nodeName: 'n1' } } as never;
  t.same(Object.keys(obs(input)), []);
});

t.test('trace ids: W3C traceparent, B3 multi and single header; malformed ones ignored', async (t) => {
  const ctx = (h: string[]) => new RequestContext(newConnectionContext({ side: 'source', protocol: 'http1', source: sourceFromPeer('spiffe://x/ns/a/sa/b', '1.2.3.4'), original: { ip: '1.2.3.4', port: 1 }, service: undefined, destination: undefined, destinationPort: 0 }), 'http1', 'GET', '/', 'h', 'http', h);
  t.equal(traceId(ctx(['traceparent', `00-${TRACE}-00f067aa0ba902b7-01`])), TRACE);
  t.equal(traceId(ctx(['traceparent', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`])), null, 'all-zero trace id is invalid');
  t.equal(traceId(ctx(['traceparent', 'garbage'])), null);
  t.equal(traceId(ctx(['X-B3-TraceId', '463ac35c9f6413ad'])), '463ac35c9f6413ad');
  t.equal(traceId(ctx(['b3', '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1'])), '80f198ee56343ba864fe8b2a57d3eff7');
  t.equal(traceId(ctx([])), null);
});

t.test('the controller: Pod annotation over Namespace, and only the values acted on', async (t) => {
  const pod = runningPod;
  const ctx = (nsAnn: Record<string, string> | undefined) => ({ opts: { trustDomain: 'cluster.local', rootNamespace: 'weft-system' }, nsLabels: () => ({ 'weft.io/mesh': 'enabled' }), nsAnnotations: () => nsAnn, mtls: new MtlsIndex([], 'weft-system') });
  t.equal(workloadOf(pod(), ctx(undefined))?.accessLog, undefined, 'off by default');
  t.equal(workloadOf(pod(), ctx({ 'weft.io/access-log': 'json' }))?.accessLog, 'json', 'from the Namespace');
  t.equal(workloadOf(pod({ 'weft.io/access-log': 'off' }), ctx({ 'weft.io/access-log': 'json' }))?.accessLog, undefined, 'the Pod turns it off');
  t.equal(workloadOf(pod({ 'weft.io/access-log': 'json' }), ctx(undefined))?.accessLog, 'json', 'the Pod turns it on');
  t.throws(() => checkAccessLogAnnotation(pod({ 'weft.io/access-log': 'text' }), 'Pod shop/p'), /Pod shop\/p, field metadata\.annotations\.weft\.io\/access-log: "text" is not supported: use "json" or "off"/);
  t.doesNotThrow(() => checkAccessLogAnnotation(pod({ 'weft.io/access-log': 'json' }), 'Pod shop/p'));
});
