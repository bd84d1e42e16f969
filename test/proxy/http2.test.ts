// HTTP/2 with prior knowledge at L7: streams multiplexed on one client connection reach both pods (same
// node and through the tunnel), a large body crosses with HTTP/2 flow control on both legs, and gRPC unary,
// bidirectional streaming and error statuses (carried in trailers) work with @grpc/grpc-js on both ends.
import { roundRobinTraffic } from '../../agent/pipeline/defaults.js';
import t, { type Test } from 'tap';
import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { listen, metricEventually, metricValue, startMesh, type Mesh, type PodSpec } from './fixtures/mesh.js';

const PODS: PodSpec[] = [
  { name: 'sleep', node: 'node-a', ip: '127.0.10.1' },
  { name: 'api-a', node: 'node-a', ip: '127.0.10.2', sa: 'api' },
  { name: 'api-b', node: 'node-b', ip: '127.0.20.2', sa: 'api' },
];
const VIP = '127.0.97.20';
const GRPC_VIP = '127.0.97.21';
const BIG = 4 * 1024 * 1024;

function h2Server(pod: string): http2.Http2Server {
  const s = http2.createServer();
  s.on('stream', (stream, headers) => {
    if (headers[':path'] === '/big') {
      stream.respond({ ':status': 200 });
      const chunk = Buffer.alloc(64 * 1024, 7);
      let sent = 0;
      const pump = () => {
        while (sent < BIG) {
          sent += chunk.length;
          if (!stream.write(chunk)) return void stream.once('drain', pump);
        }
        stream.end();
      };
      return pump();
    }
    stream.respond({ ':status': 200, 'x-pod': pod });
    stream.end(`${pod} ${headers[':path']}`);
  });
  return s;
}

const id = (b: Buffer) => b;
const ECHO: grpc.ServiceDefinition = {
  Unary: { path: '/weft.test.Echo/Unary', requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id },
  Bidi: { path: '/weft.test.Echo/Bidi', requestStream: true, responseStream: true, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id },
  Fail: { path: '/weft.test.Echo/Fail', requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id },
};

function grpcServer(pod: string): grpc.Server {
  const s = new grpc.Server();
  s.addService(ECHO, {
    Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(`${pod}:${call.request}`)),
    Bidi: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (d: Buffer) => call.write(Buffer.from(`${pod}:${d}`)));
      call.on('end', () => call.end());
    },
    Fail: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' }),
  });
  return s;
}

function bindGrpc(s: grpc.Server, addr: string): Promise<number> {
  return new Promise((resolve, reject) => s.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
}

async function setup(t: Test): Promise<{ mesh: Mesh; grpcPort: number }> {
  const a = h2Server('api-a');
  const b = h2Server('api-b');
  const port = await listen(a, '127.0.10.2');
  await new Promise<void>((r) => b.listen(port, '127.0.20.2', r));
  const ga = grpcServer('api-a');
  const gb = grpcServer('api-b');
  const grpcPort = await bindGrpc(ga, '127.0.10.2:0');
  await bindGrpc(gb, `127.0.20.2:${grpcPort}`);
  const mesh = await startMesh(PODS, [
    { name: 'api', vip: VIP, port: 80, targetPort: port, pods: ['api-a', 'api-b'] },
    { name: 'grpc', vip: GRPC_VIP, port: 9090, targetPort: grpcPort, pods: ['api-a', 'api-b'] },
    // Round robin (not the LEAST_REQUEST default), so per-stream balancing shows as alternation.
  ], { stages: { traffic: roundRobinTraffic } });
  t.teardown(async () => {
    await mesh.close();
    a.close();
    b.close();
    ga.forceShutdown();
    gb.forceShutdown();
  });
  return { mesh, grpcPort };
}

function connectAsSleep(mesh: Mesh): http2.ClientHttp2Session {
  return http2.connect('http://api.default', { createConnection: () => net.connect({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.10.1' }) });
}

function get(session: http2.ClientHttp2Session, path: string): Promise<{ status: number; body: Buffer; pod: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path });
    const parts: Buffer[] = [];
    let status = 0;
    let pod = '';
    req.on('response', (h) => {
      status = Number(h[':status']);
      pod = String(h['x-pod'] ?? '');
    });
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => resolve({ status, body: Buffer.concat(parts), pod }));
    req.on('error', reject);
  });
}

t.test('HTTP/2 prior knowledge: 20 multiplexed streams on one connection reach both pods', async (t) => {
  const { mesh } = await setup(t);
  mesh.route('sleep', VIP, 80);
  const session = connectAsSleep(mesh);
  t.teardown(() => session.close());
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => get(session, `/s${i}`)));
  t.ok(results.every((r, i) => r.status === 200 && r.body.toString() === `${r.pod} /s${i}`), 'every stream got its own answer');
  t.same(new Set(results.map((r) => r.pod)), new Set(['api-a', 'api-b']), 'streams were balanced across same-node and cross-node pods');
  t.equal(await metricEventually(mesh.a.registry, 'istio_requests_total', { reporter: 'source', destination_service: 'api.default.svc.cluster.local', response_code: '200', request_protocol: 'http' }, 20), 20);
});

t.test('HTTP/2 flow control: 4 MB responses through both legs', async (t) => {
  const { mesh } = await setup(t);
  mesh.route('sleep', VIP, 80);
  const session = connectAsSleep(mesh);
  t.teardown(() => session.close());
  const [r1, r2] = await Promise.all([get(session, '/big'), get(session, '/big')]);
  t.equal(r1!.body.length, BIG);
  t.equal(r2!.body.length, BIG);
  t.ok(r1!.body.every((b) => b === 7) && r2!.body.every((b) => b === 7), 'bytes intact');
});

t.test('gRPC unary, bidi streaming and error status, same node and cross node', async (t) => {
  const { mesh } = await setup(t);
  // grpc-js cannot pick its source address: it dials from 127.0.0.1, which the fake capture maps to "sleep".
  mesh.lookup.routes.set('127.0.0.1', { ip: GRPC_VIP, port: 9090, family: 4, cgroupId: mesh.cgroupOf('sleep') });
  const Client = grpc.makeGenericClientConstructor(ECHO, 'Echo');
  const client = new Client(`${mesh.a.outbound.host}:${mesh.a.outbound.port}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Function>;
  t.teardown(() => client.close());
  const pods = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const reply = await new Promise<Buffer>((resolve, reject) => client.Unary!(Buffer.from(`hi${i}`), (err: Error | null, r: Buffer) => (err ? reject(err) : resolve(r))));
    t.match(reply.toString(), new RegExp(`^api-[ab]:hi${i}$`));
    pods.add(reply.toString().split(':')[0]!);
  }
  t.equal(pods.size, 2, 'unary calls balanced per request across nodes');

  for (let i = 0; i < 2; i++) {
    const call = client.Bidi!() as grpc.ClientDuplexStream<Buffer, Buffer>;
    const got: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (d: Buffer) => got.push(d.toString()));
      call.on('end', resolve);
      call.on('error', reject);
    });
    for (const m of ['one', 'two', 'three']) call.write(Buffer.from(m));
    call.end();
    await done;
    t.equal(got.length, 3, 'three messages streamed back');
    t.ok(got.every((g) => g.startsWith(got[0]!.split(':')[0]!)), 'one stream stays on one pod');
  }

  const err = await new Promise<grpc.ServiceError>((resolve) => client.Fail!(Buffer.from('x'), (e: grpc.ServiceError) => resolve(e)));
  t.equal(err.code, grpc.status.NOT_FOUND, 'grpc-status from the trailers');
  t.equal(err.details, 'no such thing');
  t.ok((await metricEventually(mesh.a.registry, 'istio_requests_total', { request_protocol: 'grpc', response_code: '200', source_workload: 'sleep' }, 7)) >= 7, 'gRPC calls counted');
  const grpcLabels = { reporter: 'source', request_protocol: 'grpc', response_code: '200', response_flags: '-' };
  t.equal(await metricEventually(mesh.a.registry, 'istio_requests_total', { ...grpcLabels, grpc_response_status: '5' }, 1), 1, 'grpc_response_status: NOT_FOUND from the trailers');
  t.ok((await metricValue(mesh.a.registry, 'istio_requests_total', { ...grpcLabels, grpc_response_status: '0' })) >= 6, 'grpc_response_status: OK for the calls that succeeded');
});
