// The agent's operator endpoints and flags: metrics exposition with Istio and weft_* names, readiness that
// names what is missing, admin pages that summarise certificates without keys, and `weft agent` flag errors.
import t from 'tap';
import http from 'node:http';
import { Registry } from 'prom-client';
import { silentLogger } from '../../common/log.js';
import { serveAdmin } from '../../agent/admin/server.js';
import { parseAgentFlags } from '../../agent/flags.js';
import { Readiness, serveHealth } from '../../agent/health/server.js';
import { AgentMetrics } from '../../agent/metrics/agent-health.js';
import { IstioMetrics } from '../../agent/metrics/istio.js';
import { peerLabels } from '../../agent/metrics/peer-labels.js';
import { serveMetrics } from '../../agent/metrics/server.js';
import { ConnectionTracker } from '../../agent/proxy/connections.js';
import { MeshState } from '../../agent/state/mesh-state.js';
import { FakeCertificateProvider, TestCA } from './fixtures/ca.js';
import { buildConfig } from './fixtures/mesh.js';

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

t.test('metrics endpoint: Istio request metrics and weft_* agent health', async (t) => {
  const registry = new Registry();
  const istio = new IstioMetrics(registry);
  new AgentMetrics(registry, {
    configVersion: () => 7,
    controllerConnected: () => true,
    certificateExpiries: () => new Map([['spiffe://cluster.local/ns/default/sa/web', new Date(Date.now() + 3600_000)]]),
    captureStats: () => ({ counters: { redirected: 12 }, mapEntries: { pods: 2 }, enrolledPods: 2 }),
  });
  const peer = peerLabels({
    reporter: 'source',
    source: { workloadName: 'sleep', namespace: 'default', labels: { app: 'sleep' } },
    sourcePrincipal: 'spiffe://cluster.local/ns/default/sa/sleep',
    destination: undefined,
    destinationPrincipal: 'unknown',
    serviceHost: 'web.default.svc.cluster.local',
    security: 'mutual_tls',
  });
  istio.request(peer, 'http', 200, 3);
  istio.request(peer, 'http', 200, 4);
  const srv = await serveMetrics(registry, '127.0.0.1', 0, silentLogger);
  t.teardown(() => srv.close());
  const { status, body } = await get(srv.address.port, '/metrics');
  t.equal(status, 200);
  t.match(
    body,
    /istio_requests_total\{reporter="source",source_workload="sleep",source_canonical_service="sleep",source_canonical_revision="latest",source_workload_namespace="default",source_principal="spiffe:\/\/cluster.local\/ns\/default\/sa\/sleep",source_app="sleep",source_version="unknown",source_cluster="Kubernetes",destination_workload="unknown",destination_workload_namespace="unknown",destination_principal="unknown",destination_app="unknown",destination_version="unknown",destination_service="web.default.svc.cluster.local",destination_canonical_service="unknown",destination_canonical_revision="latest",destination_service_name="web",destination_service_namespace="default",destination_cluster="unknown",request_protocol="http",response_code="200",grpc_response_status="",response_flags="-",connection_security_policy="mutual_tls"\} 2/,
  );
  t.match(body, /istio_request_duration_milliseconds_count\{[^}]*response_code="200"[^}]*\} 2/);
  t.match(body, /weft_config_version 7/);
  t.match(body, /weft_controller_connected 1/);
  t.match(body, /weft_certificate_expiry_seconds\{spiffe_id="spiffe:\/\/cluster.local\/ns\/default\/sa\/web"\} 3[56]\d\d/);
  t.match(body, /weft_redirect_events\{event="redirected"\} 12/);
  t.match(body, /weft_node_memory_bytes\{state="total"\} \d+/);
  t.equal((await get(srv.address.port, '/stats/prometheus')).status, 200, 'Istio\'s path too');
});

t.test('readiness names what is missing; draining makes it unready', async (t) => {
  const r = new Readiness();
  let version = 0;
  r.add('config', () => (version > 0 ? undefined : 'no mesh config yet'));
  const srv = await serveHealth(r, '127.0.0.1', 0, silentLogger);
  t.teardown(() => srv.close());
  let res = await get(srv.address.port, '/healthz/ready');
  t.equal(res.status, 503);
  t.match(JSON.parse(res.body), { ready: false, failing: { config: 'no mesh config yet' } });
  version = 1;
  t.equal((await get(srv.address.port, '/healthz/ready')).status, 200);
  r.setDraining();
  res = await get(srv.address.port, '/healthz/ready');
  t.equal(res.status, 503);
  t.match(JSON.parse(res.body), { failing: { drain: /shutting down/ } });
  t.equal((await get(srv.address.port, '/healthz/live')).status, 200);
});

t.test('admin: config dump, certificates without keys, connections', async (t) => {
  const ca = await TestCA.create();
  const certs = new FakeCertificateProvider(ca);
  const cert = await certs.get('spiffe://cluster.local/ns/default/sa/web');
  const state = new MeshState('node-a');
  state.update(buildConfig([{ name: 'web', node: 'node-a', ip: '127.0.10.2' }], []));
  const connections = new ConnectionTracker();
  const done = connections.track('outbound', { destination: '127.0.10.2:80' });
  const srv = await serveAdmin({ state, connections, certs, certificates: () => [cert] }, '127.0.0.1', 0, silentLogger);
  t.teardown(() => srv.close());
  const dump = JSON.parse((await get(srv.address.port, '/config_dump')).body);
  t.equal(dump.config.workloads[0].name, 'web');
  const certsPage = (await get(srv.address.port, '/certs')).body;
  const parsed = JSON.parse(certsPage);
  t.equal(parsed.certificates[0].spiffeId, 'spiffe://cluster.local/ns/default/sa/web');
  t.match(parsed.trustBundle[0].subject, /Weft Test CA/);
  t.notMatch(certsPage, /PRIVATE KEY/, 'no key material');
  t.notMatch(certsPage, /BEGIN CERTIFICATE/, 'summaries, not PEM');
  t.equal(JSON.parse((await get(srv.address.port, '/connections')).body).open, 1);
  done();
  t.equal(JSON.parse((await get(srv.address.port, '/connections')).body).open, 0);
});

t.test('weft agent flags: defaults, and bad input named', async (t) => {
  const base = ['--node', 'node-a', '--node-ip', '10.99.0.11', '--controller', '10.99.0.2:15012', '--controller-ca', '/ca.pem', '--token-file', '/tok', '--cgroup-root', '/sys/fs/cgroup/x', '--cgroup-layout', 'sandbox', '--bpffs', '/sys/fs/bpf/weft-x', '--state-dir', '/tmp/s'];
  const o = parseAgentFlags(base, {});
  t.equal(o.outboundIp, '10.99.0.11', '--outbound-ip defaults to the node IP');
  t.equal(o.listen.outbound, 15001);
  t.equal(o.listen.inbound, 15008);
  t.equal(o.cgroupLayout, 'sandbox');
  t.throws(() => parseAgentFlags([...base, '--node-ip', 'nope'], {}), { code: 'WEFT_ERR_CONFIG', message: /--node-ip: "nope" is not an IP address/ });
  t.throws(() => parseAgentFlags([...base, '--cgroup-layout', 'docker'], {}), { message: /--cgroup-layout/ });
  t.throws(() => parseAgentFlags([...base, '--bogus', 'x'], {}), { message: /--bogus: unknown flag/ });
  t.throws(() => parseAgentFlags(base.filter((a, i) => a !== '--controller' && base[i - 1] !== '--controller'), {}), { message: /--controller: missing/ });
  t.equal(parseAgentFlags(base.slice(2), { NODE_NAME: 'node-z' }).node, 'node-z', 'NODE_NAME when --node is absent');
  t.equal(parseAgentFlags(['--uninstall', '--bpffs', '/sys/fs/bpf/weft-y'], {}).uninstall, true);
});
