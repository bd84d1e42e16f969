// istio_request_bytes and istio_response_bytes: one observation per request of the body bytes each way,
// in Istio's size buckets (1, 10, ... 10^8), on the same series as istio_requests_total (so a request's
// flags and gRPC status split the byte histograms as they split the counter).
import t from 'tap';
import { Registry } from 'prom-client';
import { BYTES_BUCKETS, IstioMetrics } from '../../agent/metrics/istio.js';
import { peerLabels } from '../../agent/metrics/peer-labels.js';

const peer = peerLabels({ reporter: 'source', source: { workloadName: 'load', namespace: 'shop' }, sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/load', destination: undefined, destinationPrincipal: 'unknown', serviceHost: 'web.shop.svc.cluster.local', security: 'none' });

/** `name_bucket` samples of the series with these labels, as Prometheus scrapes them: le → cumulative count. */
function buckets(text: string, name: string, match: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}_bucket{`) || !line.includes(match)) continue;
    const le = /le="([^"]+)"/.exec(line)![1]!;
    out.set(le, Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

function sample(text: string, name: string, match: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(match));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

t.test('Istio\'s size buckets', async (t) => {
  t.same([...BYTES_BUCKETS], [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000]);
});

t.test('request and response body sizes land in their buckets, sums exact', async (t) => {
  const registry = new Registry();
  const m = new IstioMetrics(registry);
  const h = m.requests(peer, 'http');
  h.record(200, 3, 0, 1024); // a GET: no request body, a 1 KiB answer
  h.record(200, 3, 10, 10); // exactly on a bound: in le="10" (Prometheus buckets are upper-inclusive)
  h.record(200, 3, 11, 100000001); // just above 10 and above the last bound (only in +Inf)
  const text = await registry.metrics();
  const ok = 'response_code="200",grpc_response_status="",response_flags="-"';
  const req = buckets(text, 'istio_request_bytes', ok);
  t.same(Object.fromEntries(req), { 1: 1, 10: 2, 100: 3, 1000: 3, 10000: 3, 100000: 3, 1000000: 3, 10000000: 3, 100000000: 3, '+Inf': 3 });
  const resp = buckets(text, 'istio_response_bytes', ok);
  t.same(Object.fromEntries(resp), { 1: 0, 10: 1, 100: 1, 1000: 1, 10000: 2, 100000: 2, 1000000: 2, 10000000: 2, 100000000: 2, '+Inf': 3 });
  t.equal(sample(text, 'istio_request_bytes_sum', ok), 21);
  t.equal(sample(text, 'istio_response_bytes_sum', ok), 1024 + 10 + 100000001);
  t.equal(sample(text, 'istio_request_bytes_count', ok), 3);
  t.equal(sample(text, 'istio_requests_total', ok), 3, 'the same series as the counter');
});

t.test('flags and gRPC status make their own series, in every family', async (t) => {
  const registry = new Registry();
  const m = new IstioMetrics(registry);
  const h = m.requests(peer, 'grpc');
  h.record(200, 1, 5, 7, '-', 0);
  h.record(503, 1, 5, 19, 'URX,UF', 14);
  h.record(200, 1, 5, 7, '-', 0);
  h.record(200, 1, 5, 0, '-', 5);
  const text = await registry.metrics();
  for (const family of ['istio_requests_total', 'istio_request_duration_milliseconds_count', 'istio_request_bytes_count', 'istio_response_bytes_count']) {
    t.equal(sample(text, family, 'response_code="200",grpc_response_status="0",response_flags="-"'), 2, `${family}: OK`);
    t.equal(sample(text, family, 'response_code="503",grpc_response_status="14",response_flags="URX,UF"'), 1, `${family}: the failure`);
    t.equal(sample(text, family, 'response_code="200",grpc_response_status="5",response_flags="-"'), 1, `${family}: NOT_FOUND`);
  }
  t.equal(sample(text, 'istio_response_bytes_sum', 'grpc_response_status="14",response_flags="URX,UF"'), 19);
  t.equal(m.requestSeries.length, 3);
});
