// The traffic metrics read one status per scrape: two scrapes back to back (a test, Prometheus after a
// restart, an operator's curl) must each see the state of their own moment, not a cached one.
import t from 'tap';
import { Registry } from 'prom-client';

import { registerTrafficMetrics } from '../../agent/traffic/metrics.js';
import type { TrafficStatus } from '../../agent/traffic/status.js';

t.test('each scrape reads the status once, and the next scrape reads it again', async (t) => {
  let rejected = 0;
  let calls = 0;
  const status = (): TrafficStatus => {
    calls++;
    return { backends: [], rateLimits: [{ policy: 'ns/lim', pod: 'uid-1', entry: -1, endpoint: '10.98.1.5:8080', tokens: 0, allowed: 5, rejected: rejected ? { 'spiffe://cluster.local/ns/ns/sa/a': rejected } : {} }] };
  };
  const registry = new Registry();
  registerTrafficMetrics(registry, status);
  const first = await registry.metrics();
  t.notMatch(first, /weft_traffic_rate_limited_total\{/, 'nothing refused yet');
  t.equal(calls, 1, 'one status for all the metrics of one scrape');
  rejected = 3;
  const second = await registry.metrics();
  t.match(second, /weft_traffic_rate_limited_total\{policy="ns\/lim",source_principal="spiffe:\/\/cluster.local\/ns\/ns\/sa\/a"\} 3/, 'a scrape right after the first sees the new count');
  t.equal(calls, 2);
});
