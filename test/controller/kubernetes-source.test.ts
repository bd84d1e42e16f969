// The Kubernetes source driven through @kubernetes/client-node against a fake API server replaying recorded
// list and watch streams: pagination, bookmarks, a watch dropped mid-event (resume from the last
// resourceVersion), 410 Gone (relist → replaceAll), refused objects, CRDs not installed, API errors.
import t from 'tap';
import { WeftConfigError } from '../../common/errors.js';
import { createLogger } from '../../common/log.js';
import { KubernetesSource, WATCHED_KINDS } from '../../controller/sources/kubernetes.js';
import type { KubeObject } from '../../controller/sources/types.js';
import { FakeApiServer, RecordingSink, fixture, fixtureJson, waitFor } from './kubernetes-fakes.js';

const FAST = { initialBackoffMs: 20, maxBackoffMs: 100, crdRetryMs: 150, watchTimeoutSeconds: 290, requestTimeoutMs: 3000 };

function captureLogs() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'debug', write: (l) => lines.push(JSON.parse(l)) });
  return { logger, lines };
}

// the store's kind of check: a DNS-1123 label for serviceAccountName, a port in range for Services
function validate(o: KubeObject): WeftConfigError | undefined {
  const where = `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`;
  const spec = o.spec as { serviceAccountName?: string; ports?: { port: number }[] } | undefined;
  if (o.kind === 'Pod' && spec?.serviceAccountName && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(spec.serviceAccountName)) {
    return new WeftConfigError(`${where} spec.serviceAccountName`, `"${spec.serviceAccountName}" is not a DNS-1123 label`);
  }
  for (const [i, p] of (spec?.ports ?? []).entries()) {
    if (o.kind === 'Service' && (p.port < 1 || p.port > 65535)) return new WeftConfigError(`${where} spec.ports[${i}].port`, `${p.port} is not a port (1-65535)`);
  }
  return undefined;
}

t.test('pods: paginated list, watch with bookmarks, dropped watch resumes, 410 relists', async (t) => {
  const api = new FakeApiServer();
  await api.listen();
  t.teardown(() => api.close());
  api.route('/api/v1/pods', {
    lists: [{ body: fixtureJson('pods-list-rv1000.json') }, { body: fixtureJson('pods-list-rv2000.json') }],
    watches: [
      { stream: fixture('pods-watch-from-rv1000.jsonl'), end: 'drop' },
      { stream: fixture('pods-watch-from-rv1005.jsonl'), end: 'close' },
      { stream: fixture('pods-watch-from-rv1008.jsonl'), end: 'close' },
      { stream: fixture('pods-watch-from-rv2000.jsonl'), end: 'hold' },
    ],
  });
  const sink = new RecordingSink(validate);
  const { logger, lines } = captureLogs();
  const src = new KubernetesSource({
    kubeConfig: api.kubeConfig(),
    logger,
    kinds: WATCHED_KINDS.filter((k) => k.kind === 'Pod'),
    timing: { ...FAST, pageSize: 1 },
  });
  t.teardown(() => src.stop());
  await src.start(sink);
  await sink.until(() => sink.calls.filter((c) => c.op === 'replaceAll').length === 2 && api.requestsFor('/api/v1/pods', true).length >= 4, 8000, 'relist and fourth watch');

  const lists = api.requestsFor('/api/v1/pods', false);
  t.same(
    lists.map((r) => [r.query.limit, r.query.continue !== undefined]),
    [['1', false], ['1', true], ['1', false], ['1', true], ['1', true], ['1', true]],
    'two paginated LISTs (2 and 4 pages of one object)',
  );
  const watches = api.requestsFor('/api/v1/pods', true);
  t.same(watches.map((r) => r.query.resourceVersion), ['1000', '1005', '1008', '2000'], 'watch from the list RV, resume after the drop from the bookmark, after the close from the last event, after 410 from the relist');
  t.ok(watches.every((r) => r.query.allowWatchBookmarks === 'true' && r.query.timeoutSeconds === '290'), 'watches ask for bookmarks and a server-side timeout');
  t.ok(api.requests.every((r) => r.auth === 'Bearer weft-test-token'), 'every request carries the kubeconfig token');

  t.same(sink.calls, [
    { op: 'replaceAll', kinds: ['Pod'], keys: ['Pod:shop/frontend-7d9c8f6b4-abcde', 'Pod:shop/cart-5f6b7c9d8-fghij'], refused: [] },
    { op: 'upsert', key: 'Pod:shop/checkout-6c8d9e7f5-klmno', rv: '1001' },
    { op: 'upsert', key: 'Pod:shop/frontend-7d9c8f6b4-abcde', rv: '1002' },
    // the half-sent MODIFIED of cart (rv 1004) was lost with the connection, and is not replayed: the bookmark moved us past it
    { op: 'delete', key: 'Pod:shop/cart-5f6b7c9d8-fghij' },
    { op: 'upsert', key: 'Pod:shop/checkout-6c8d9e7f5-klmno', rv: '1007', refused: 'Pod shop/checkout-6c8d9e7f5-klmno spec.serviceAccountName: "Checkout_SA" is not a DNS-1123 label' },
    { op: 'upsert', key: 'Pod:shop/reviews-84c5d6f7b9-pqrst', rv: '1008' },
    {
      op: 'replaceAll',
      kinds: ['Pod'],
      keys: ['Pod:shop/frontend-7d9c8f6b4-abcde', 'Pod:shop/checkout-6c8d9e7f5-klmno', 'Pod:shop/reviews-84c5d6f7b9-pqrst', 'Pod:shop/payments-9f7e6d5c4-uvwxy'],
      refused: [],
    },
  ]);
  const listed = sink.objects.get('Pod:shop/payments-9f7e6d5c4-uvwxy')!;
  t.equal(listed.kind, 'Pod', 'list items get their kind (the API server omits it)');
  t.equal(listed.apiVersion, 'v1');
  t.equal((listed.metadata as Record<string, unknown>).managedFields, undefined, 'managedFields dropped');
  t.equal((listed.status as { podIP: string }).podIP, '10.244.1.20', 'the rest of the object is as the API server sent it');
  t.equal(((sink.objects.get('Pod:shop/reviews-84c5d6f7b9-pqrst')!.status) as { podIP: string }).podIP, '10.244.2.10', 'the relist carries the changes missed while expired');

  const refusedLog = lines.find((l) => l.msg?.toString().startsWith('object refused'));
  t.match(refusedLog, { level: 'warn', kind: 'Pod', object: 'Pod shop/checkout-6c8d9e7f5-klmno', error: /WEFT_ERR_CONFIG: .*spec\.serviceAccountName/ }, 'the refusal is logged with object and error');
  t.ok(lines.some((l) => l.msg === 'watch expired (410 Gone), listing again'), '410 logged');
  await waitFor(() => src.status()[0]!.resourceVersion === '2040', 3000, 'the bookmark on the held watch');
  const st = src.status()[0]!;
  t.match(st, { kind: 'Pod', state: 'synced', resourceVersion: '2040', lists: 2, relistsOnGone: 1, refused: 1 }, 'status: the held watch bookmark moved the RV to 2040');
});

t.test('all kinds: CRDs not installed are tolerated, API errors are retried, invalid list items are refused one by one', async (t) => {
  const api = new FakeApiServer();
  await api.listen();
  t.teardown(() => api.close());
  api.route('/api/v1/namespaces', { lists: [{ status: 500, body: fixtureJson('status-500.json') }, { body: fixtureJson('namespaces-list.json') }] });
  api.route('/api/v1/serviceaccounts', { lists: [{ body: fixtureJson('serviceaccounts-list.json') }] });
  api.route('/api/v1/nodes', { lists: [{ body: fixtureJson('nodes-list.json') }] });
  api.route('/api/v1/pods', { lists: [{ body: fixtureJson('pods-list-rv1000.json') }] });
  api.route('/api/v1/services', { lists: [{ body: fixtureJson('services-list.json') }] });
  api.route('/apis/discovery.k8s.io/v1/endpointslices', { lists: [{ body: fixtureJson('endpointslices-list.json') }] });
  api.route('/apis/weft.io/v1alpha1/authorizationpolicies', { lists: [{ body: fixtureJson('authorizationpolicies-list.json') }] });
  api.route('/apis/gateway.networking.k8s.io/v1/httproutes', { lists: [{ body: fixtureJson('httproutes-list.json') }] });
  // peerauthentications, trafficpolicies and grpcroutes: not installed (404) for now

  const sink = new RecordingSink(validate);
  const { logger, lines } = captureLogs();
  const src = new KubernetesSource({ kubeConfig: api.kubeConfig(), logger, timing: FAST });
  t.teardown(() => src.stop());
  await src.start(sink);
  await sink.until(() => sink.objects.has('Namespace:shop'), 3000, 'namespaces after the 500');

  const kinds = new Set([...sink.objects.keys()].map((k) => k.split(':')[0]));
  t.same([...kinds].sort(), ['AuthorizationPolicy', 'EndpointSlice', 'HTTPRoute', 'Namespace', 'Node', 'Pod', 'Service', 'ServiceAccount'], 'every installed kind listed');
  t.match(sink.objects.get('HTTPRoute:shop/cart-canary'), { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', spec: { rules: [{ backendRefs: [{ weight: 90 }, { weight: 10 }] }] } });
  t.match(sink.objects.get('EndpointSlice:shop/cart-x8k2f'), { apiVersion: 'discovery.k8s.io/v1', addressType: 'IPv4', endpoints: [{ addresses: ['10.244.2.7'], nodeName: 'node-b' }] });
  const node = sink.objects.get('Node:node-b')!;
  t.match(node, { kind: 'Node', apiVersion: 'v1', status: { addresses: [{ type: 'InternalIP', address: '172.18.0.3' }] } });
  t.equal((node.status as Record<string, unknown>).images, undefined, "a Node's image list is dropped");
  t.ok(sink.objects.has('Service:shop/cart') && !sink.objects.has('Service:shop/broken'), 'the invalid Service is refused, the valid ones apply');
  t.match(lines.find((l) => l.msg?.toString().startsWith('object refused')), { object: 'Service shop/broken', error: /spec\.ports\[0\]\.port/ });
  t.ok(lines.some((l) => l.level === 'warn' && l.kind === 'Namespace' && /list failed: .*etcdserver: request timed out/.test(String(l.msg))), 'the 500 is logged with the API server message');

  // let the CRD loops look again a few times, then install TrafficPolicy
  await new Promise((r) => setTimeout(r, 400));
  t.ok(api.requestsFor('/apis/weft.io/v1alpha1/trafficpolicies', false).length >= 2, 'a missing CRD is looked for again');
  const missing = lines.filter((l) => l.msg === 'custom resource not installed in the cluster; will look again');
  t.same(missing.map((l) => l.kind).sort(), ['GRPCRoute', 'PeerAuthentication', 'TrafficPolicy'], 'each missing CRD is logged once, however often it is retried');
  t.match(src.status().find((s) => s.kind === 'TrafficPolicy'), { state: 'not-installed' });

  api.route('/apis/weft.io/v1alpha1/trafficpolicies', { lists: [{ body: fixtureJson('trafficpolicies-list.json') }] });
  await sink.until(() => sink.objects.has('TrafficPolicy:shop/cart-retries'), 3000, 'TrafficPolicy once installed');
  t.ok(lines.some((l) => l.msg === 'custom resource is now installed' && l.kind === 'TrafficPolicy'));
  await sink.until(() => api.requestsFor('/apis/weft.io/v1alpha1/trafficpolicies', true).length === 1, 3000, 'TrafficPolicy watch');
  t.equal(api.requestsFor('/apis/weft.io/v1alpha1/trafficpolicies', true)[0]!.query.resourceVersion, '1300');
  t.match(src.status().find((s) => s.kind === 'PeerAuthentication'), { state: 'not-installed' });
});

t.test('a watch refused with 410 at the HTTP level and a CRD deleted while watched', async (t) => {
  const api = new FakeApiServer();
  await api.listen();
  t.teardown(() => api.close());
  const gone = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'too old resource version: 1000 (1200)', reason: 'Expired', code: 410 });
  api.route('/api/v1/services', {
    lists: [{ body: fixtureJson('services-list.json') }],
    watches: [{ stream: gone, end: 'close', status: 410 }],
  });
  api.route('/apis/weft.io/v1alpha1/authorizationpolicies', { lists: [{ body: fixtureJson('authorizationpolicies-list.json') }], watches: [{ stream: '', end: 'close' }] });
  const sink = new RecordingSink();
  const { logger } = captureLogs();
  const src = new KubernetesSource({ kubeConfig: api.kubeConfig(), logger, kinds: WATCHED_KINDS.filter((k) => k.kind === 'Service' || k.kind === 'AuthorizationPolicy'), timing: FAST });
  t.teardown(() => src.stop());
  await src.start(sink);
  await sink.until(() => sink.calls.filter((c) => c.op === 'replaceAll' && c.kinds[0] === 'Service').length === 2, 3000, 'relist after HTTP 410');
  t.ok(sink.objects.has('AuthorizationPolicy:shop/cart-allow-frontend'));

  // the CRD is deleted: the API server ends the watch and answers 404 from then on
  api.remove('/apis/weft.io/v1alpha1/authorizationpolicies');
  await sink.until(() => !sink.objects.has('AuthorizationPolicy:shop/cart-allow-frontend'), 3000, 'objects of a deleted CRD withdrawn');
  await sink.until(() => src.status().find((s) => s.kind === 'AuthorizationPolicy')?.state === 'not-installed', 3000, 'not-installed state');
  t.pass('a deleted CRD withdraws its objects and waits for it to come back');
});

t.test('a silent watch (dead connection, no bookmarks) is abandoned and resumed from its resourceVersion', async (t) => {
  const api = new FakeApiServer();
  await api.listen();
  t.teardown(() => api.close());
  api.route('/api/v1/namespaces', { lists: [{ body: fixtureJson('namespaces-list.json') }] });
  const sink = new RecordingSink();
  const { logger, lines } = captureLogs();
  const src = new KubernetesSource({ kubeConfig: api.kubeConfig(), logger, kinds: WATCHED_KINDS.filter((k) => k.kind === 'Namespace'), timing: { ...FAST, watchIdleMs: 200 } });
  t.teardown(() => src.stop());
  await src.start(sink);
  await waitFor(() => api.requestsFor('/api/v1/namespaces', true).length >= 3, 3000, 'watches resumed after silence');
  t.same(api.requestsFor('/api/v1/namespaces', true).map((r) => r.query.resourceVersion).slice(0, 3), ['1000', '1000', '1000'], 'resumed, not relisted');
  t.equal(api.requestsFor('/api/v1/namespaces', false).length, 1, 'one LIST only');
  t.ok(lines.some((l) => /watch ended: no event or bookmark for 200 ms/.test(String(l.msg))), 'logged');
  const t0 = Date.now();
  await src.stop();
  t.ok(Date.now() - t0 < 1000, 'stop is prompt');
});
