// What operators see per endpoint, from the runtime state through each layer: the agent's /traffic status
// (circuit in use against its limits, the pending queue, ejection times, the endpoint a rate-limit bucket
// guards), its weft_traffic_* metrics, the controller's /api/v1/endpoints rows built from a scrape of them,
// and the `weft config dump endpoints` table.
import t from 'tap';
import { Registry } from 'prom-client';

import { registerTrafficMetrics } from '../../agent/traffic/metrics.js';
import { trafficStatus } from '../../agent/traffic/status.js';
import { endpointTables, type TrafficView } from '../../cli/inspect.js';
import { endpointRows, ENDPOINT_METRICS } from '../../controller/api/endpoint-status.js';
import { parseExposition, type Sample } from '../../controller/telemetry/exposition.js';
import { config, runtime } from './endpoint-fixture.js';

t.test('agent status, metrics, controller rows and the CLI table agree', async (t) => {
  const perf = 1000;
  const wall = Date.parse('2026-12-02T10:00:00.000Z');
  const rt = runtime(perf);
  const st = trafficStatus(rt, config, perf, wall);
  const be = st.backends[0]!;
  t.same(be.circuit, { open: true, activeRequests: 1, activeConnections: 0, activeRetries: 0, pending: 3, pendingGranted: 0, pendingCancelled: 0, overloaded: 1, limits: { maxConnections: 1, http1MaxPendingRequests: 3, maxRetries: 2 } }, 'circuit: one in flight, three waiting, one refused; the limits in force');
  t.equal(be.endpoints.find((e) => e.id === '10.98.1.5:8080')!.overloaded, 1, 'refusals counted against the endpoint picked');
  const bad = be.endpoints.find((e) => e.id === '10.98.2.7:8080')!;
  t.same([bad.ejected, bad.ejectedSince, bad.ejectedUntil, bad.ejections], [true, '2026-12-02T10:00:00.000Z', '2026-12-02T10:00:08.000Z', 1], 'ejected since, until, multiplier');
  t.same(st.rateLimits[0]!.endpoint, '10.98.1.5:8080', 'the bucket names the endpoint it guards');

  const registry = new Registry();
  registerTrafficMetrics(registry, () => trafficStatus(rt, config, perf, wall));
  const text = await registry.metrics();
  t.match(text, /weft_traffic_circuit_in_use\{backend="shop\/web:80",resource="connections"\} 1/);
  t.match(text, /weft_traffic_circuit_in_use\{backend="shop\/web:80",resource="pending"\} 3/);
  t.match(text, /weft_traffic_circuit_limit\{backend="shop\/web:80",resource="pending"\} 3/);
  t.notMatch(text, /weft_traffic_circuit_limit\{backend="shop\/web:80",resource="requests"\}/, 'no limit, no series');
  t.match(text, /weft_traffic_endpoint_ejection_end_timestamp_seconds\{backend="shop\/web:80",endpoint="10\.98\.2\.7:8080"\} 1796205608/);
  t.match(text, /weft_traffic_endpoint_rate_limited_total\{policy="shop\/web",endpoint="10\.98\.1\.5:8080"\} 3/);

  // the controller's view, from a scrape of that text (its scraper adds the node)
  const wanted = new Set<string>(ENDPOINT_METRICS);
  const samples: Record<string, Sample[]> = {};
  for (const s of parseExposition(text, (n) => wanted.has(n))) (samples[s.name] ??= []).push({ ...s, labels: { ...s.labels, node: 'node-1' } });
  const rows = endpointRows(samples);
  t.same(
    rows.map((r) => [r.node, r.backend, r.endpoint, r.ejected, r.ejectedUntil, r.outstanding, r.overloaded, r.rateLimited]),
    [
      ['node-1', 'shop/web:80', '10.98.1.5:8080', false, null, 1, 1, 3],
      ['node-1', 'shop/web:80', '10.98.2.7:8080', true, '2026-12-02T10:00:08.000Z', 0, 1, 0],
    ],
  );
  t.same(rows[0]!.circuit, { connections: { inUse: 1, limit: 1 }, pending: { inUse: 3, limit: 3 }, retries: { inUse: 0, limit: 2 } }, 'only limited resources');

  // the CLI table, from the same status (as GET /traffic returns it)
  const out = endpointTables({ write: () => {}, color: false }, [{ node: 'node-1', data: JSON.parse(JSON.stringify(st)) as TrafficView }]);
  t.match(out, /NODE\s+BACKEND\s+ENDPOINT\s+STATE\s+OUTSTANDING\s+EWMA\s+REQUESTS\s+FAILURES\s+CIRCUIT\s+POLICY\s+RATE-LIMITED/);
  t.match(out, /node-1\s+shop\/web:80\s+10\.98\.1\.5:8080\s+healthy\s+1\s+[\d.]+ms\s+1\s+0\s+open conn 1\/1 pending 3\/3 retries 0\/2\s+shop\/web\s+3\n/);
  t.match(out, /10\.98\.2\.7:8080\s+ejected until 2026-12-02T10:00:08\.000Z \(x1\)/);
  t.match(out, /RATE LIMIT\s+ENDPOINT\s+BUCKET[\s\S]*shop\/web\s+10\.98\.1\.5:8080\s+default/);
});
