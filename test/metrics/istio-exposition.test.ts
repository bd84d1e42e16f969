// The Istio metrics count with plain numbers on handles; what a scrape sees must be exactly what the
// prom-client Counter/Histogram implementation exported for the same events (bench/metrics-reference.ts):
// names, help, label order, values, sums, buckets and series order, in text and in JSON.
import t from 'tap';
import { Registry } from 'prom-client';
import { IstioMetrics, type PeerLabels } from '../../agent/metrics/istio.js';
import { PromClientIstioMetrics } from '../../bench/metrics-reference.js';

function peer(i: number, over: Partial<PeerLabels> = {}): PeerLabels {
  return Object.freeze({
    reporter: i % 2 ? 'destination' : 'source',
    source_workload: `client-${i % 3}`,
    source_canonical_service: `client-${i % 3}`,
    source_canonical_revision: 'latest',
    source_workload_namespace: 'shop',
    source_principal: `spiffe://cluster.local/ns/shop/sa/client-${i % 3}`,
    source_app: 'unknown',
    source_version: 'unknown',
    source_cluster: 'Kubernetes',
    destination_workload: `web-${i % 4}`,
    destination_workload_namespace: 'shop',
    destination_principal: 'spiffe://cluster.local/ns/shop/sa/web',
    destination_app: 'web',
    destination_version: `v${i % 2}`,
    destination_service: `web.shop.svc.cluster.local`,
    destination_canonical_service: 'web',
    destination_canonical_revision: `v${i % 2}`,
    destination_service_name: 'web',
    destination_service_namespace: 'shop',
    destination_cluster: 'Kubernetes',
    connection_security_policy: i % 2 ? 'mutual_tls' : 'none',
    ...over,
  });
}

// A small deterministic generator, so a failure is reproducible.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

type Event =
  | { kind: 'request'; peer: PeerLabels; protocol: string; code: number; ms: number; reqBytes: number; respBytes: number; flags: string; grpc: number }
  | { kind: 'open'; peer: PeerLabels; protocol?: string }
  | { kind: 'close'; peer: PeerLabels; received: number; sent: number; protocol?: string };

function events(n: number, seed: number): Event[] {
  const r = rng(seed);
  // Equal label sets as distinct objects too (a new config version rebuilds them): same series.
  const peers = [...Array.from({ length: 6 }, (_, i) => peer(i)), peer(1), peer(2, { destination_service: 'a "quoted"\\ name\nwith newline' })];
  const codes = [200, 200, 200, 404, 503, 0, 431, 101];
  const protocols = ['http', 'grpc', 'http'];
  const out: Event[] = [];
  for (let i = 0; i < n; i++) {
    const p = peers[Math.floor(r() * peers.length)]!;
    const x = r();
    if (x < 0.6) {
      // durations across every bucket, bounds exactly, and above the last one
      const ms = r() < 0.1 ? [0.5, 1, 250, 3600000, 4000000, 0][Math.floor(r() * 6)]! : r() ** 4 * 70000;
      // sizes across every byte bucket, its bounds exactly, 0 and above 10^8
      const size = () => (r() < 0.1 ? [0, 1, 10, 100000000, 200000000][Math.floor(r() * 5)]! : Math.floor(r() ** 6 * 1e8));
      const flags = ['-', '-', '-', 'UF', 'URX,UF', 'NR', 'RL', 'DC'][Math.floor(r() * 8)]!;
      const protocol = protocols[Math.floor(r() * 3)]!;
      const grpc = protocol === 'grpc' ? [0, 0, 14, 5, 7][Math.floor(r() * 5)]! : -1;
      out.push({ kind: 'request', peer: p, protocol, code: codes[Math.floor(r() * codes.length)]!, ms, reqBytes: size(), respBytes: size(), flags, grpc });
    } else if (x < 0.8) out.push({ kind: 'open', peer: p, ...(r() < 0.5 ? { protocol: 'http' } : {}) });
    else out.push({ kind: 'close', peer: p, received: r() < 0.2 ? 0 : Math.floor(r() * 1e6), sent: r() < 0.2 ? 0 : Math.floor(r() * 1e7), ...(r() < 0.5 ? { protocol: 'http' } : {}) });
  }
  return out;
}

function apply(m: IstioMetrics | PromClientIstioMetrics, evs: Event[]): void {
  for (const e of evs) {
    if (e.kind === 'request') m.request(e.peer, e.protocol, e.code, e.ms, e.reqBytes, e.respBytes, e.flags, e.grpc);
    else if (e.kind === 'open') m.tcpOpen(e.peer, e.protocol);
    else m.tcpClose(e.peer, e.received, e.sent, e.protocol);
  }
}

// JSON with object keys sorted (their order carries no meaning there); a string compare stays fast.
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x));
}

t.test('same exposition as prom-client for the same events (text and JSON)', async (t) => {
  for (const seed of [1, 2, 3]) {
    const evs = events(5000, seed);
    const before = new Registry();
    const after = new Registry();
    apply(new PromClientIstioMetrics(before), evs);
    apply(new IstioMetrics(after), evs);
    const text = await after.metrics();
    t.equal(text, await before.metrics(), `seed ${seed}: text exposition identical`);
    t.equal(canonical(await after.getMetricsAsJSON()), canonical(await before.getMetricsAsJSON()), `seed ${seed}: JSON identical`);
    t.match(text, /istio_request_duration_milliseconds_bucket\{le="0.5",reporter="/);
    t.match(text, /istio_request_bytes_bucket\{le="100000000",reporter="/);
    t.match(text, /istio_response_bytes_count\{reporter="/);
  }
});

t.test('nothing counted yet: the families are there, empty, as before', async (t) => {
  const before = new Registry();
  const after = new Registry();
  new PromClientIstioMetrics(before);
  new IstioMetrics(after);
  t.equal(await after.metrics(), await before.metrics());
});

t.test('handles: counted once per request, totals for the controller report', async (t) => {
  const m = new IstioMetrics();
  const h = m.requests(peer(0), 'http');
  t.equal(m.requests(peer(0), 'http'), h, 'an equal label set (another object) gets the same handle');
  h.record(200, 3);
  h.record(200, 7);
  h.record(503, 1);
  m.request(peer(0), 'http', 0, 2);
  m.tcp(peer(1)).open();
  m.tcpOpen(peer(1));
  m.tcpClose(peer(1), 10, 20);
  // a same-node exchange's destination report (plaintext) is the same request again: not counted twice
  m.request(peer(1, { connection_security_policy: 'none' }), 'http', 503, 1);
  m.tcpOpen(peer(1, { connection_security_policy: 'none' }));
  t.same(m.totals(), { requests: 4, requestErrors: 2, connectionsOpened: 2 });
  const s = m.requestSeries.find((x) => x.code === 200)!;
  t.equal(s.count, 2);
  t.equal(s.sum, 10);
  t.same([...s.buckets.slice(0, 5)], [0, 0, 1, 1, 0], '3 ms in (1,5], 7 ms in (5,10]');
  const c = m.tcp(peer(1));
  t.same([c.opened, c.closed, c.received, c.sent], [2, 1, 10, 20]);
});

t.test('a non-finite duration is counted as 0 instead of throwing on the request path', async (t) => {
  const m = new IstioMetrics(new Registry());
  m.request(peer(0), 'http', 200, Number.NaN);
  m.request(peer(0), 'http', 200, Infinity);
  const s = m.requestSeries[0]!;
  t.equal(s.count, 2);
  t.equal(s.sum, 0);
  t.equal(s.buckets[0], 2);
});
