// Per-request cost of the Istio metrics, before (prom-client labelled children, bench/metrics-reference.ts)
// and after (plain numbers on handles, agent/metrics/istio.ts), in one process, interleaved:
//   node dist/bench/metrics.js [--requests N] [--rounds R]
// Each request records one response code, one duration and its body sizes for one of a few peer label sets,
// as the proxy does. "handle" is the path the pipeline takes (handle fetched once per route, record per request);
// "lookup" finds the handle by label object each time (IstioMetrics.request), as callers without one do.
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { IstioMetrics, type PeerLabels } from '../agent/metrics/istio.js';
import { peerLabels } from '../agent/metrics/peer-labels.js';
import { PromClientIstioMetrics } from './metrics-reference.js';

export interface MetricsBenchResult {
  requests: number;
  rounds: number;
  /** ns per request, median over rounds (min–max) */
  nsPerRequest: Record<'promClient' | 'lookup' | 'handle', { median: number; min: number; max: number }>;
}

function peers(n: number): PeerLabels[] {
  return Array.from({ length: n }, (_, i) =>
    peerLabels({
      reporter: 'source',
      source: { workloadName: `client-${i}`, namespace: 'bench', labels: { app: `client-${i}`, version: 'v1' } },
      sourcePrincipal: `spiffe://cluster.local/ns/bench/sa/client-${i}`,
      destination: undefined,
      destinationPrincipal: 'spiffe://cluster.local/ns/bench/sa/server',
      serviceHost: 'server.bench.svc.cluster.local',
      security: 'none',
    }),
  );
}

export function runMetricsBench(requests = 1_000_000, rounds = 5): MetricsBenchResult {
  const ps = peers(4);
  const codes = [200, 200, 200, 200, 200, 200, 200, 404, 200, 503];
  const durations = Array.from({ length: 64 }, (_, i) => (i * 7919) % 300 / 10);
  const before = new PromClientIstioMetrics(new Registry());
  const after = new IstioMetrics(new Registry());
  const handles = ps.map((p) => after.requests(p, 'http'));
  const runs: Record<'promClient' | 'lookup' | 'handle', () => void> = {
    promClient: () => {
      for (let i = 0; i < requests; i++) before.request(ps[i & 3]!, 'http', codes[i % 10]!, durations[i & 63]!, 0, 1024);
    },
    lookup: () => {
      for (let i = 0; i < requests; i++) after.request(ps[i & 3]!, 'http', codes[i % 10]!, durations[i & 63]!, 0, 1024);
    },
    handle: () => {
      for (let i = 0; i < requests; i++) handles[i & 3]!.record(codes[i % 10]!, durations[i & 63]!, 0, 1024);
    },
  };
  const samples: Record<string, number[]> = { promClient: [], lookup: [], handle: [] };
  for (const run of Object.values(runs)) run(); // warm up every path first (JIT)
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of Object.entries(runs)) {
      const t0 = process.hrtime.bigint();
      run();
      samples[name]!.push(Number(process.hrtime.bigint() - t0) / requests);
    }
  }
  const summary = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s.at(-1)! };
  };
  return {
    requests,
    rounds,
    nsPerRequest: { promClient: summary(samples['promClient']!), lookup: summary(samples['lookup']!), handle: summary(samples['handle']!) },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { requests: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '5' } } });
  const r = runMetricsBench(Number(values.requests), Number(values.rounds));
  const f = (x: { median: number; min: number; max: number }) => `${x.median.toFixed(1)} ns (${x.min.toFixed(1)}–${x.max.toFixed(1)})`;
  process.stdout.write(
    `Istio metrics per request (${r.requests} requests × ${r.rounds} interleaved rounds, ${process.version}):\n` +
      `  prom-client labelled children (before): ${f(r.nsPerRequest.promClient)}\n` +
      `  IstioMetrics.request (lookup by label object): ${f(r.nsPerRequest.lookup)}\n` +
      `  RequestCounter.record (handle per route): ${f(r.nsPerRequest.handle)}\n` +
      `  ${JSON.stringify(r)}\n`,
  );
}
