// The new Istio labels and byte histograms as real proxies report them (two in-process node proxies, the
// tunnel between them): a request across nodes is reported by the caller's proxy (source) and the
// destination's (destination) with the body bytes each way, "-" flags, the canonical labels from both pods'
// labels and the Service's name; a request to a pod that refuses connections is reported with UF; a pod
// outside the mesh has no destination_principal.
import t from 'tap';
import http from 'node:http';
import type { Registry } from 'prom-client';
import { listen, metricEventually, metricValue, startMesh, type PodSpec } from '../proxy/fixtures/mesh.js';

const PODS: PodSpec[] = [
  { name: 'sleep', node: 'node-a', ip: '127.0.30.1', labels: { app: 'sleep', version: 'v2' } },
  { name: 'web-b', node: 'node-b', ip: '127.0.40.2', sa: 'web', labels: { 'service.istio.io/canonical-name': 'storefront', 'app.kubernetes.io/version': '1.4.0', app: 'web' } },
  // nothing listens on this pod's port: connecting to it fails at the destination's node
  { name: 'dead-b', node: 'node-b', ip: '127.0.40.3', sa: 'dead' },
  // a pod outside the mesh: reached in plaintext, it has no identity to report
  { name: 'plain-b', node: 'node-b', ip: '127.0.40.4', sa: 'plain', meshed: false },
];
const WEB_VIP = '127.0.97.30';
const DEAD_VIP = '127.0.97.31';
const PLAIN_VIP = '127.0.97.32';
const ANSWER = 'x'.repeat(1500);

/** One histogram sample (`_sum`, `_count`) of the series with these labels. */
async function histogramSample(registry: Registry, family: string, suffix: 'sum' | 'count', labels: Record<string, string>): Promise<number | undefined> {
  const m = await registry.getSingleMetric(family)?.get();
  const v = m?.values.find((x) => (x as { metricName?: string }).metricName === `${family}_${suffix}` && Object.entries(labels).every(([k, want]) => String((x.labels as Record<string, unknown>)[k]) === want));
  return v?.value;
}

t.test('a request across nodes: bytes, flags and canonical labels from both reporters; UF for a refused connection', async (t) => {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(ANSWER));
  });
  const port = await listen(server, '127.0.40.2');
  const plain = http.createServer((req, res) => req.resume().on('end', () => res.end('plain')));
  await new Promise<void>((r) => plain.listen(port, '127.0.40.4', r));
  const mesh = await startMesh(PODS, [
    { name: 'web', vip: WEB_VIP, port: 80, targetPort: port, pods: ['web-b'] },
    { name: 'dead', vip: DEAD_VIP, port: 80, targetPort: port, pods: ['dead-b'] },
    { name: 'plain', vip: PLAIN_VIP, port: 80, targetPort: port, pods: ['plain-b'] },
  ]);
  t.teardown(async () => {
    await mesh.close();
    server.close();
    plain.close();
  });
  const send = (vip: string, body: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      mesh.route('sleep', vip, 80);
      const req = http.request({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.30.1', method: 'POST', path: '/', headers: { 'content-length': Buffer.byteLength(body) }, agent: false }, (res) => {
        let data = '';
        res.on('data', (d) => (data += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: data }));
      });
      req.on('error', reject);
      req.end(body);
    });

  const sent = 'y'.repeat(777);
  const ok = await send(WEB_VIP, sent);
  t.equal(ok.status, 200);
  t.equal(ok.body.length, ANSWER.length);
  const canonical = {
    source_workload: 'sleep',
    source_canonical_service: 'sleep',
    source_canonical_revision: 'v2',
    source_app: 'sleep',
    source_version: 'v2',
    source_cluster: 'Kubernetes',
    destination_workload: 'web-b',
    destination_canonical_service: 'storefront',
    destination_canonical_revision: '1.4.0',
    destination_app: 'web',
    destination_version: 'unknown',
    destination_principal: mesh.spiffe('web-b'),
    destination_service: 'web.default.svc.cluster.local',
    destination_service_name: 'web',
    destination_service_namespace: 'default',
    destination_cluster: 'Kubernetes',
    request_protocol: 'http',
    response_code: '200',
    grpc_response_status: '',
    response_flags: '-',
  };
  for (const [node, reporter] of [[mesh.a, 'source'], [mesh.b, 'destination']] as const) {
    const labels = { ...canonical, reporter };
    t.equal(await metricEventually(node.registry, 'istio_requests_total', labels, 1), 1, `${reporter}: counted once with every label`);
    t.equal(await histogramSample(node.registry, 'istio_request_bytes', 'sum', labels), sent.length, `${reporter}: request body bytes`);
    t.equal(await histogramSample(node.registry, 'istio_response_bytes', 'sum', labels), ANSWER.length, `${reporter}: response body bytes`);
    t.equal(await histogramSample(node.registry, 'istio_response_bytes', 'count', labels), 1);
  }

  const failed = await send(DEAD_VIP, 'z');
  t.equal(failed.status, 503);
  const dead = { reporter: 'source', destination_service_name: 'dead', response_code: '503' };
  t.equal(await metricEventually(mesh.a.registry, 'istio_requests_total', { ...dead, response_flags: 'UF' }, 1), 1, 'the failure is flagged UF');
  t.equal(await metricValue(mesh.a.registry, 'istio_requests_total', { ...dead, response_flags: '-' }), 0, 'and not counted as unflagged');

  t.equal((await send(PLAIN_VIP, 'p')).status, 200);
  const toPlain = { reporter: 'source', destination_workload: 'plain-b', connection_security_policy: 'none', response_code: '200' };
  t.equal(await metricEventually(mesh.a.registry, 'istio_requests_total', { ...toPlain, destination_principal: 'unknown' }, 1), 1, 'a destination outside the mesh has no principal');
  t.equal(await metricValue(mesh.a.registry, 'istio_requests_total', { ...toPlain, destination_principal: mesh.spiffe('plain-b') }), 0);
});
