// Istio's standard metrics as a real sandbox's Prometheus sees them (issue 14, "Metrics people already
// query"), checked by test/e2e/operators.test.ts on its two-node sandbox: curl in shop/load (node-1) calls
// pods pinned to node-2, and both proxies' reports must carry the bytes curl sent and received, "-" flags
// for a normal request, UF,URX for one whose pod port refuses (retried once), grpc_response_status for a gRPC call, and the
// canonical labels taken from the pods' labels.
import type { Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Objects to add to the sandbox spec: two pods on node-2 and their Services. */
export const ISTIO_METRICS_SPEC = `---
apiVersion: v1
kind: Pod
metadata:
  name: sizes
  namespace: shop
  labels: { app: sizes, version: v3, service.istio.io/canonical-name: size-service }
spec:
  nodeName: node-2
  containers:
    - { name: sizes, command: [node, sizes.mjs] }
---
apiVersion: v1
kind: Service
metadata: { name: sizes, namespace: shop }
spec:
  selector: { app: sizes }
  # port 81 goes to a port nothing listens on: the destination's proxy cannot connect (UF)
  ports: [{ name: http, port: 80, targetPort: 8080, appProtocol: http }, { name: closed, port: 81, targetPort: 8099, appProtocol: http }]
---
apiVersion: v1
kind: Pod
metadata:
  name: rpc
  namespace: shop
  labels: { app.kubernetes.io/name: rpc-api, app.kubernetes.io/version: 2.0.1 }
spec:
  nodeName: node-2
  containers:
    - { name: rpc, command: [node, rpc.mjs] }
---
apiVersion: v1
kind: Service
metadata: { name: rpc, namespace: shop }
spec:
  selector: { app.kubernetes.io/name: rpc-api }
  ports: [{ name: grpc, port: 50051, targetPort: 50051, appProtocol: grpc }]
`;

const ANSWER_BYTES = 2345;
const UPLOAD_BYTES = 4321;

/** The pods' programs and curl's upload, next to the spec. */
export function writeIstioMetricsFixtures(dir: string): void {
  writeFileSync(join(dir, 'sizes.mjs'), `import { createServer } from 'node:http';
createServer((req, res) => { req.resume(); req.on('end', () => res.end('s'.repeat(${ANSWER_BYTES}))); }).listen(8080);
`);
  // a gRPC-shaped server: unary answers, grpc-status in the trailers (NOT_FOUND for /Missing)
  writeFileSync(join(dir, 'rpc.mjs'), `import { createServer } from 'node:http2';
createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const missing = req.url.endsWith('/Missing');
    res.writeHead(200, { 'content-type': 'application/grpc' });
    res.addTrailers({ 'grpc-status': missing ? '5' : '0' });
    res.end(missing ? undefined : Buffer.from([0, 0, 0, 0, 2, 8, 1]));
  });
}).listen(50051);
`);
  writeFileSync(join(dir, 'upload.bin'), Buffer.alloc(UPLOAD_BYTES, 0x75));
  writeFileSync(join(dir, 'grpc-frame.bin'), Buffer.from([0, 0, 0, 0, 2, 8, 1]));
}

type Query = (q: string) => Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
type Exec = (pod: string, argv: string[]) => { status: number | null; stdout: string; stderr: string };

/** One sample's value, polled until Prometheus has scraped it (every 5 s) or 40 s passed. */
async function scraped(query: Query, q: string, want: (v: number) => boolean): Promise<number | undefined> {
  let last: number | undefined;
  for (let i = 0; i < 40; i++) {
    const r = await query(q);
    last = r.length ? Number(r[0]!.value[1]) : undefined;
    if (last !== undefined && want(last)) return last;
    await sleep(1000);
  }
  return last;
}

export async function checkIstioMetrics(t: Test, dir: string, query: Query, exec: Exec): Promise<void> {
  const curl = (args: string[]) => exec('shop/load', ['curl', '-sS', '--max-time', '20', '-o', '/dev/null', ...args]);
  // the Services and their endpoints are in every agent's config once the sandbox is up; retry while the pods start
  let ok = curl(['-w', '%{http_code} %{size_upload} %{size_download}', '--data-binary', `@${join(dir, 'upload.bin')}`, 'http://sizes.shop.svc.cluster.local/']);
  for (let i = 0; i < 20 && !ok.stdout.startsWith('200 '); i++) {
    await sleep(1000);
    ok = curl(['-w', '%{http_code} %{size_upload} %{size_download}', '--data-binary', `@${join(dir, 'upload.bin')}`, 'http://sizes.shop.svc.cluster.local/']);
  }
  const [code, up, down] = ok.stdout.trim().split(' ').map(Number);
  t.equal(code, 200, `curl to sizes: ${ok.stdout} ${ok.stderr}`);
  t.equal(up, UPLOAD_BYTES, 'curl sent the whole upload');
  t.equal(down, ANSWER_BYTES, 'curl received the whole answer');

  const failed = curl(['-w', '%{http_code}', 'http://sizes.shop.svc.cluster.local:81/']);
  t.equal(failed.stdout.trim(), '503', `a port nothing listens on: 503 (${failed.stderr})`);

  const grpcArgs = (method: string) => ['--http2-prior-knowledge', '-H', 'content-type: application/grpc', '-H', 'te: trailers', '--data-binary', `@${join(dir, 'grpc-frame.bin')}`, '-w', '%{http_code}', `http://rpc.shop.svc.cluster.local:50051/weft.e2e.Rpc/${method}`];
  t.equal(curl(grpcArgs('Get')).stdout.trim(), '200', 'gRPC call answered');
  t.equal(curl(grpcArgs('Missing')).stdout.trim(), '200', 'gRPC NOT_FOUND is HTTP 200 with grpc-status 5');

  // The same request as each node's proxy reports it: node-1 as source, node-2 as destination (mTLS).
  const peers = [
    'source_workload="load"',
    'source_canonical_service="load"',
    'source_canonical_revision="latest"',
    'source_app="load"',
    'source_cluster="Kubernetes"',
    'destination_workload="sizes"',
    'destination_canonical_service="size-service"',
    'destination_canonical_revision="v3"',
    'destination_app="sizes"',
    'destination_version="v3"',
    'destination_principal="spiffe://cluster.local/ns/shop/sa/default"',
    'destination_service="sizes.shop.svc.cluster.local"',
    'destination_service_name="sizes"',
    'destination_service_namespace="shop"',
    'destination_cluster="Kubernetes"',
    'request_protocol="http"',
  ].join(',');
  for (const [reporter, node] of [['source', 'node-1'], ['destination', 'node-2']] as const) {
    const sel = `reporter="${reporter}",node="${node}",${peers},response_code="200",response_flags="-",grpc_response_status=""`;
    t.equal(await scraped(query, `sum(istio_requests_total{${sel}})`, (v) => v >= 1), 1, `${reporter}: one request with every label`);
    t.equal(await scraped(query, `sum(istio_request_bytes_sum{${sel}})`, (v) => v > 0), UPLOAD_BYTES, `${reporter}: istio_request_bytes = what curl sent`);
    t.equal(await scraped(query, `sum(istio_response_bytes_sum{${sel}})`, (v) => v > 0), ANSWER_BYTES, `${reporter}: istio_response_bytes = what curl received`);
    // 4321 bytes: above 1000, within 10000
    t.equal(await scraped(query, `sum(istio_request_bytes_bucket{${sel},le=~"1000|1000[.]0"})`, () => true), 0, `${reporter}: not in le=1000`);
    t.equal(await scraped(query, `sum(istio_request_bytes_bucket{${sel},le=~"10000|10000[.]0"})`, (v) => v > 0), 1, `${reporter}: in le=10000 (Istio's size buckets)`);
  }
  t.equal(
    await scraped(query, 'sum(istio_requests_total{reporter="source",destination_service_name="sizes",response_code="503",response_flags="UF,URX"})', (v) => v >= 1),
    1,
    'the refused port: 503 flagged UF (connection failure), URX (the default retry spent) by the caller\'s proxy',
  );
  const rpc = 'reporter="destination",request_protocol="grpc",destination_canonical_service="rpc-api",destination_canonical_revision="2.0.1",destination_service_name="rpc",response_code="200",response_flags="-"';
  t.equal(await scraped(query, `sum(istio_requests_total{${rpc},grpc_response_status="0"})`, (v) => v >= 1), 1, 'gRPC OK: grpc_response_status="0"');
  t.equal(await scraped(query, `sum(istio_requests_total{${rpc},grpc_response_status="5"})`, (v) => v >= 1), 1, 'gRPC NOT_FOUND: grpc_response_status="5"');
}
