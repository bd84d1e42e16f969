// `weft top`'s aggregation (cli/top-table.ts) and table: each request counted once whichever proxies report
// it (the caller's view for a meshed caller, the destination's for a caller outside the mesh), grouped by source,
// destination, method and path without its query; count, best, worst, last latency and success rate.
import t from 'tap';

import type { TapEvent } from '../../common/tap.js';
import { countedView, TopTable } from '../../cli/top-table.js';
import { renderTop } from '../../cli/top.js';
import { formatTapEvent } from '../../cli/tap-format.js';

function ev(over: Partial<TapEvent> & { reporter: TapEvent['reporter'] }, dstPrincipal: string | null = 'spiffe://cluster.local/ns/shop/sa/web'): TapEvent {
  return {
    type: 'request',
    time: '2026-12-02T09:00:00.000Z',
    node: 'node-1',
    direction: over.reporter === 'source' ? 'outbound' : 'inbound',
    source: { workload: 'load', namespace: 'shop', pod: 'load', principal: 'spiffe://cluster.local/ns/shop/sa/load', addr: '10.98.1.2' },
    destination: { workload: 'web', namespace: 'shop', pod: 'web-1', principal: dstPrincipal, service: 'web.shop.svc.cluster.local', addr: '10.98.2.3:8080' },
    tls: true,
    protocol: 'http1',
    method: 'GET',
    authority: 'web.shop.svc.cluster.local',
    path: '/',
    status: 200,
    latencyMs: 1,
    bytesReceived: 0,
    bytesSent: 3,
    responseFlags: [],
    route: null,
    policy: null,
    attempts: 1,
    traceId: null,
    headers: [],
    ...over,
  };
}

t.test('each request once, grouped, with latency and success', async (t) => {
  const top = new TopTable();
  // five requests between meshed pods, each reported by both proxies: counted from the caller's view (its
  // latency and status: the third one failed at the caller, answered 503 after the destination's 200)
  const lat = [4, 2, 9, 3, 5];
  lat.forEach((l, i) => {
    top.add(ev({ reporter: 'source', latencyMs: l, path: `/api?i=${i}`, status: i === 2 ? 503 : 200 }));
    top.add(ev({ reporter: 'destination', latencyMs: l - 1, path: `/api?i=${i}` }));
  });
  // a destination outside the mesh: only the caller's proxy reports it
  top.add(ev({ reporter: 'source', path: '/ext', destination: { workload: null, namespace: null, pod: null, principal: null, service: null, addr: '10.0.0.9:80' }, latencyMs: 7 }, null));
  // a POST to the same path is another row; no response at all is a failure
  top.add(ev({ reporter: 'source', method: 'POST', path: '/api', status: 0, latencyMs: 30 }));
  // a caller outside the mesh: only the destination's proxy saw it
  top.add(ev({ reporter: 'destination', path: '/from-outside', source: { workload: null, namespace: null, pod: null, principal: null, addr: '10.98.9.9' }, latencyMs: 1 }));
  t.equal(top.counted, 8);
  t.equal(top.skipped, 5, "the destination's views of requests the caller's proxy reports are left out");
  const rows = top.top();
  t.same(rows.map((r) => [r.source, r.destination, r.method, r.path, r.count]), [
    ['shop/load', 'shop/web', 'GET', '/api', 5],
    ['10.98.9.9', 'shop/web', 'GET', '/from-outside', 1],
    ['shop/load', '10.0.0.9:80', 'GET', '/ext', 1],
    ['shop/load', 'shop/web', 'POST', '/api', 1],
  ]);
  t.match(rows[0], { bestMs: 2, worstMs: 9, lastMs: 5, successes: 4, success: 0.8 });
  t.match(rows[3], { success: 0 });
  t.same(top.top(1).length, 1);
  t.equal(countedView(ev({ reporter: 'destination' })), false, 'a meshed caller: its own proxy counts it');

  const text = renderTop({ write() {}, color: false }, rows, 'header');
  t.match(text, /^header\nSOURCE\s+DESTINATION\s+METHOD\s+PATH\s+COUNT\s+BEST\s+WORST\s+LAST\s+SUCCESS\nshop\/load\s+shop\/web\s+GET\s+\/api\s+5\s+2\.0ms\s+9\.0ms\s+5\.0ms\s+80\.00%\n/);
  t.notMatch(text, /\u001b\[/, 'no colour off a terminal');
  t.match(renderTop({ write() {}, color: true }, rows, 'h'), /\u001b\[/, 'colour on a terminal');
  t.match(renderTop({ write() {}, color: false }, [], 'h'), /no requests yet/);
});

t.test('a tap line', async (t) => {
  const line = formatTapEvent({ write() {}, color: false }, ev({ reporter: 'destination', status: 503, responseFlags: ['UF'], latencyMs: 12.3 }));
  t.equal(
    line,
    '09:00:00.000 node=node-1 dir=in src=shop/load src_pod=load src_id=spiffe://cluster.local/ns/shop/sa/load dst=shop/web dst_pod=web-1 dst_id=spiffe://cluster.local/ns/shop/sa/web tls=true :method=GET :authority=web.shop.svc.cluster.local :path=/ :status=503 latency=12ms bytes=0B/3B flags=UF\n',
  );
});
