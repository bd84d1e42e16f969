// The labels Istio's dashboards and Kiali filter on, derived as docs/operators.md decided: canonical
// service and revision from the pod labels (each field falling back on its own), app/version, cluster,
// the Service's name and namespace; and the per-request response_flags and grpc_response_status.
import t from 'tap';
import type { Workload } from '../../common/mesh.js';
import { peerLabels } from '../../agent/metrics/peer-labels.js';
import { flagsLabel, grpcStatusOf, NO_GRPC_STATUS } from '../../agent/metrics/response-labels.js';
import { serviceNameOf, workloadLabels } from '../../agent/metrics/workload-labels.js';

function pod(name: string, labels: Record<string, string>): Workload {
  return { uid: `uid-${name}`, namespace: 'shop', name: `${name}-7d9f-x1`, serviceAccount: name, node: 'node-1', ips: ['10.98.1.5'], labels, meshed: true, hostNetwork: false, mtlsMode: 'STRICT', workloadName: name };
}

t.test('canonical service and revision: Istio label, else app.kubernetes.io, else app/version, else workload / latest', async (t) => {
  const all = { 'service.istio.io/canonical-name': 'storefront', 'service.istio.io/canonical-revision': 'r7', 'app.kubernetes.io/name': 'k8s-web', 'app.kubernetes.io/version': '1.4.0', app: 'web', version: 'v1' };
  t.match(workloadLabels(pod('web', all)), { canonicalService: 'storefront', canonicalRevision: 'r7', app: 'web', version: 'v1', cluster: 'Kubernetes' });
  const { ['service.istio.io/canonical-name']: _n, ['service.istio.io/canonical-revision']: _r, ...k8s } = all;
  t.match(workloadLabels(pod('web', k8s)), { canonicalService: 'k8s-web', canonicalRevision: '1.4.0' });
  t.match(workloadLabels(pod('web', { app: 'web', version: 'v1' })), { canonicalService: 'web', canonicalRevision: 'v1' });
  t.match(workloadLabels(pod('web', {})), { canonicalService: 'web', canonicalRevision: 'latest', app: 'unknown', version: 'unknown' }, 'workload name and latest');
  // each field on its own: a canonical name with the revision left to `version`
  t.match(workloadLabels(pod('web', { 'service.istio.io/canonical-name': 'storefront', version: 'v3' })), { canonicalService: 'storefront', canonicalRevision: 'v3' });
  t.match(workloadLabels(pod('web', { app: '', 'app.kubernetes.io/name': 'named' })), { canonicalService: 'named' }, 'an empty label value does not count');
  t.match(workloadLabels(undefined), { canonicalService: 'unknown', canonicalRevision: 'latest', app: 'unknown', version: 'unknown', cluster: 'unknown' });
  t.match(workloadLabels({ workloadName: 'from-baggage' }), { canonicalService: 'from-baggage', canonicalRevision: 'latest', app: 'unknown' }, 'a workload known only by name');
});

t.test('destination_service_name and _namespace from the Service host', async (t) => {
  t.same(serviceNameOf('web.shop.svc.cluster.local'), { name: 'web', namespace: 'shop' });
  t.same(serviceNameOf('web.shop.svc.example.org'), { name: 'web', namespace: 'shop' });
  t.same(serviceNameOf('unknown'), { name: 'unknown', namespace: 'unknown' });
  t.same(serviceNameOf('10.97.0.4:80'), { name: '10.97.0.4:80', namespace: 'unknown' });
});

t.test('a peer label set: every Istio standard label, from both workloads', async (t) => {
  const l = peerLabels({
    reporter: 'destination',
    source: pod('load', { app: 'load', version: 'v2' }),
    sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/load',
    destination: pod('web', { 'app.kubernetes.io/name': 'storefront', 'app.kubernetes.io/version': '1.4.0', app: 'web' }),
    destinationPrincipal: 'spiffe://cluster.local/ns/shop/sa/web',
    serviceHost: 'web.shop.svc.cluster.local',
    security: 'mutual_tls',
  });
  t.same(l, {
    reporter: 'destination',
    source_workload: 'load',
    source_canonical_service: 'load',
    source_canonical_revision: 'v2',
    source_workload_namespace: 'shop',
    source_principal: 'spiffe://cluster.local/ns/shop/sa/load',
    source_app: 'load',
    source_version: 'v2',
    source_cluster: 'Kubernetes',
    destination_workload: 'web',
    destination_workload_namespace: 'shop',
    destination_principal: 'spiffe://cluster.local/ns/shop/sa/web',
    destination_app: 'web',
    destination_version: 'unknown',
    destination_service: 'web.shop.svc.cluster.local',
    destination_canonical_service: 'storefront',
    destination_canonical_revision: '1.4.0',
    destination_service_name: 'web',
    destination_service_namespace: 'shop',
    destination_cluster: 'Kubernetes',
    connection_security_policy: 'mutual_tls',
  });
  t.ok(Object.isFrozen(l), 'shared between requests, so frozen');
  const none = peerLabels({ reporter: 'source', source: undefined, sourcePrincipal: 'unknown', destination: undefined, destinationPrincipal: 'unknown', serviceHost: undefined, security: 'none' });
  t.match(none, { source_workload: 'unknown', source_canonical_revision: 'latest', destination_service: 'unknown', destination_service_name: 'unknown', destination_cluster: 'unknown' });
});

t.test('response_flags: "-" when none, else the distinct flags in Envoy\'s order, comma-joined', async (t) => {
  t.equal(flagsLabel([]), '-');
  t.equal(flagsLabel(['UF']), 'UF');
  t.equal(flagsLabel(['UF', 'UF', 'URX']), 'UF,URX', 'a connection failure on every attempt, then retries exhausted');
  t.equal(flagsLabel(['URX', 'UF']), 'UF,URX', 'Envoy\'s order, not the order raised');
  t.equal(flagsLabel(['DC', 'UT', 'DI']), 'UT,DI,DC');
});

t.test('grpc_response_status: the server\'s status, else inferred from the HTTP status as Envoy does, empty for HTTP', async (t) => {
  t.equal(grpcStatusOf(false, undefined, 200), NO_GRPC_STATUS, 'not gRPC');
  t.equal(grpcStatusOf(false, 5, 200), NO_GRPC_STATUS, 'not gRPC, whatever a header said');
  t.equal(grpcStatusOf(true, 0, 200), 0);
  t.equal(grpcStatusOf(true, 5, 200), 5, 'NOT_FOUND from the server');
  t.equal(grpcStatusOf(true, undefined, 503), 14, 'a 503 from the mesh is UNAVAILABLE');
  t.equal(grpcStatusOf(true, undefined, 504), 14);
  t.equal(grpcStatusOf(true, undefined, 429), 14);
  t.equal(grpcStatusOf(true, undefined, 403), 7);
  t.equal(grpcStatusOf(true, undefined, 404), 12);
  t.equal(grpcStatusOf(true, undefined, 401), 16);
  t.equal(grpcStatusOf(true, undefined, 400), 13);
  t.equal(grpcStatusOf(true, undefined, 500), 2);
  t.equal(grpcStatusOf(true, undefined, 200), 2, 'a 200 without grpc-status is UNKNOWN');
  t.equal(grpcStatusOf(true, undefined, 0), NO_GRPC_STATUS, 'no response at all');
});
