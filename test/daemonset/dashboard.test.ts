// The Grafana dashboards: valid JSON Grafana can import, a Prometheus data source variable, panels for the
// Istio standard metrics and the agents' weft_* health; the Istio ones use Istio's query shapes and only
// labels the agents export.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';

import { IstioMetrics } from '../../agent/metrics/istio.js';
import { peerLabels } from '../../agent/metrics/peer-labels.js';
import { repoRoot } from '../helpers/paths.js';

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { uid: string };
  targets?: { expr: string; refId: string }[];
}
interface Dashboard {
  title: string;
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: string | { query: string } }[] };
}
const DIR = join(repoRoot, 'daemonset', 'grafana');
const load = (f: string) => JSON.parse(readFileSync(join(DIR, f), 'utf8')) as Dashboard;
const dash = load('weft-dashboard.json');
const dashboards = readdirSync(DIR).filter((f) => f.endsWith('.json')).map((f) => ({ file: f, d: load(f) }));

t.test('importable: title, unique uid, unique panel ids, a Prometheus data source variable', async (t) => {
  t.ok(dashboards.length >= 3, 'the agents\' dashboard, the Istio mesh and workload dashboards');
  t.equal(new Set(dashboards.map(({ d }) => d.uid)).size, dashboards.length, 'one uid per dashboard');
  for (const { file, d } of dashboards) {
    t.ok(d.title && d.uid, `${file}: title and uid`);
    const ids = d.panels.map((p) => p.id);
    t.equal(new Set(ids).size, ids.length, `${file}: unique panel ids`);
    t.ok(d.templating.list.some((v) => v.name === 'datasource' && v.type === 'datasource'), `${file}: data source variable`);
    for (const p of d.panels.filter((p) => p.type !== 'row')) {
      t.equal(p.datasource?.uid, '${datasource}', `${file} ${p.title}: uses the selected data source`);
      t.ok(p.targets?.length, `${file} ${p.title}: has queries`);
      for (const q of p.targets ?? []) t.equal(count(q.expr, '('), count(q.expr, ')'), `${file} ${p.title}: balanced parentheses in ${q.expr}`);
      t.ok(p.gridPos.x + p.gridPos.w <= 24, `${file} ${p.title}: fits the grid`);
    }
  }
});

function count(s: string, c: string): number {
  return s.split(c).length - 1;
}

t.test('covers requests, durations, TCP, redirects, certificates, config version, agent CPU and memory', async (t) => {
  const exprs = dash.panels.flatMap((p) => p.targets ?? []).map((q) => q.expr).join('\n');
  for (const m of [
    'istio_requests_total',
    'istio_request_duration_milliseconds_bucket',
    'istio_tcp_sent_bytes_total',
    'istio_tcp_received_bytes_total',
    'istio_tcp_connections_opened_total',
    'istio_tcp_connections_closed_total',
    'weft_redirect_events',
    'weft_certificate_expiry_seconds',
    'weft_config_version',
    'weft_controller_connected',
    'container_cpu_usage_seconds_total',
    'container_memory_working_set_bytes',
  ]) {
    t.match(exprs, new RegExp(`\\b${m}\\b`), m);
  }
  t.match(exprs, /by \(response_code\)/, 'request rate by response code');
  t.match(exprs, /histogram_quantile\(0\.50,/);
  t.match(exprs, /histogram_quantile\(0\.99,/);
});

/** Every label the agents put on the Istio families, read from a real exposition. */
async function exportedIstioLabels(): Promise<Set<string>> {
  const registry = new Registry();
  const m = new IstioMetrics(registry);
  const peer = peerLabels({ reporter: 'source', source: undefined, sourcePrincipal: 'unknown', destination: undefined, destinationPrincipal: 'unknown', serviceHost: undefined, security: 'none' });
  m.request(peer, 'http', 200, 1);
  m.tcpOpen(peer);
  m.tcpClose(peer, 1, 1);
  const names = new Set<string>(['le']);
  for (const f of await registry.getMetricsAsJSON()) for (const v of f.values) for (const k of Object.keys(v.labels)) names.add(k);
  return names;
}

t.test('the Istio dashboards: the new families and labels, Istio\'s query shapes, only labels the agents export', async (t) => {
  const exported = await exportedIstioLabels();
  for (const l of ['response_flags', 'grpc_response_status', 'destination_canonical_service', 'source_canonical_revision', 'destination_service_name']) t.ok(exported.has(l), `the agents export ${l}`);
  const istio = dashboards.filter(({ file }) => file.startsWith('istio-'));
  t.same(istio.map(({ file }) => file).sort(), ['istio-mesh-dashboard.json', 'istio-workload-dashboard.json']);
  const all = istio.flatMap(({ d }) => d.panels.flatMap((p) => p.targets ?? []).map((q) => q.expr)).join('\n');
  for (const m of ['istio_requests_total', 'istio_request_duration_milliseconds_bucket', 'istio_request_bytes_bucket', 'istio_response_bytes_bucket', 'istio_tcp_sent_bytes_total', 'istio_tcp_connections_opened_total']) {
    t.match(all, new RegExp(`\\b${m}\\b`), m);
  }
  t.match(all, /by \(response_flags\)/, 'requests by response flag');
  t.match(all, /by \(grpc_response_status\)/, 'gRPC requests by status');
  t.match(all, /destination_canonical_service/, 'canonical service');
  t.match(all, /response_code!~"5\.\*"/, 'success rate as Istio counts it (non-5xx)');
  t.match(all, /reporter=~"source\|waypoint"/, 'the mesh view counts each request once, at its caller');
  // every label a query filters or groups on is one the agents put on the Istio families
  for (const { file, d } of istio) {
    for (const p of d.panels) {
      for (const q of p.targets ?? []) {
        const used = new Set<string>();
        for (const sel of q.expr.matchAll(/istio_\w+\{([^}]*)\}/g)) for (const m of sel[1]!.matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)) used.add(m[1]!);
        for (const by of q.expr.matchAll(/by \(([^)]*)\)/g)) for (const l of by[1]!.split(',')) used.add(l.trim());
        for (const l of used) t.ok(exported.has(l), `${file} ${p.title}: ${l} is exported`);
      }
    }
    const vars = d.templating.list.map((v) => (typeof v.query === 'string' ? v.query : v.query?.query ?? '')).join('\n');
    for (const m of vars.matchAll(/label_values\([^,]*,\s*(\w+)\)/g)) t.ok(exported.has(m[1]!), `${file}: variable over ${m[1]} is exported`);
  }
});
