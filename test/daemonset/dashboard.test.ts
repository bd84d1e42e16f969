// The Grafana dashboard: valid JSON Grafana can import, a Prometheus data source variable, and panels for
// the Istio standard metrics and the agents' weft_* health.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { repoRoot } from '../helpers/paths.js';

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { uid: string };
  targets?: { expr: string; refId: string }[];
}
const dash = JSON.parse(readFileSync(join(repoRoot, 'daemonset', 'grafana', 'weft-dashboard.json'), 'utf8')) as {
  title: string;
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string }[] };
};

t.test('importable: title, uid, unique panel ids, a Prometheus data source variable', async (t) => {
  t.ok(dash.title && dash.uid);
  const ids = dash.panels.map((p) => p.id);
  t.equal(new Set(ids).size, ids.length);
  t.ok(dash.templating.list.some((v) => v.name === 'datasource' && v.type === 'datasource'));
  for (const p of dash.panels.filter((p) => p.type !== 'row')) {
    t.equal(p.datasource?.uid, '${datasource}', `${p.title}: uses the selected data source`);
    t.ok(p.targets?.length, `${p.title}: has queries`);
    for (const q of p.targets ?? []) t.equal(count(q.expr, '(') , count(q.expr, ')'), `${p.title}: balanced parentheses in ${q.expr}`);
    t.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title}: fits the grid`);
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
