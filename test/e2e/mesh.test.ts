// End to end on a real two-node sandbox: unmodified programs in meshed pods (curl, h2load, small Node
// clients) talk to a server pod on the same node and to one on the other node, by service name, in every
// protocol the node proxy must carry. Each exchange is checked for what the program saw AND for what the
// agents counted (deltas in their metrics, so a bypassed mesh fails); a capture on the underlay shows no
// plaintext crosses it and the tunnel speaks TLS 1.3; a proxy impostor with another CA is refused.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { startSandbox, uniqueSandboxId, type ExecResult, type SandboxHandle } from '../../sandbox/api.js';
import type { SandboxStatus } from '../../sandbox/status.js';
import { weft } from '../helpers/sandbox.js';
import { Capture, deltasEventually, scrapeAll, type DeltaCheck } from './mesh-probe.js';
import { PORTS } from './fixtures/protocol.js';
import { FIXTURES, NS, writeSpec } from './spec.js';

const NODE = process.execPath;
const MB100 = 100 * 1024 * 1024;

const dir = mkdtempSync(join(tmpdir(), 'weft-e2e-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const { spec: SPEC, appTls } = await writeSpec(dir);

const id = uniqueSandboxId();
function down(): void {
  const r = weft(['sandbox', 'down', '--id', id], { timeoutMs: 180_000 });
  if (r.status !== 0) console.error(`sandbox down --id ${id} failed: ${r.stderr}`);
}
// Registered before `up`, so a failure anywhere after still removes everything (down is idempotent).
t.teardown(down);
const fqdn = (svc: string) => `${svc}.${NS}.svc.cluster.local`;

/** Up, with the mesh, and both servers answering through it; on any failure the sandbox is removed. */
async function setUp(): Promise<{ sb: SandboxHandle; status: SandboxStatus }> {
  try {
    const t0 = performance.now();
    const sb = await startSandbox({ id, spec: SPEC, nodes: 2 });
    const status = sb.status();
    t.comment(`sandbox ${id} up in ${Math.round(performance.now() - t0)} ms`);
    if (!status.mesh.enabled) throw new Error(`sandbox ${id} came up without the mesh: ${status.mesh.reason}`);
    // The servers start with the sandbox; wait until both answer through the mesh.
    for (const dest of ['near', 'far']) {
      let r: ExecResult | undefined;
      for (let i = 0; i < 60; i++) {
        r = await sb.exec(`${NS}/client`, ['curl', '-sS', '--max-time', '10', `http://${fqdn(dest)}/`], { timeoutMs: 60_000 });
        if (r.code === 0 && r.stdout.includes(`"pod":"${dest}"`)) break;
        await sleep(500);
      }
      if (r?.code !== 0) throw new Error(`${dest} never answered through the mesh: ${r?.stderr}`);
    }
    return { sb, status };
  } catch (err) {
    down();
    throw err;
  }
}
const { sb, status } = await setUp();

const metricsUrls = Object.fromEntries(status.nodes.map((n) => [n.name, n.agent.metrics!]));
const pod = (ns: string, name: string) => status.pods.find((p) => p.namespace === ns && p.name === name)!;
const node = (name: string) => status.nodes.find((n) => n.name === name)!;

async function exec(podName: string, argv: string[], timeoutMs = 120_000): Promise<ExecResult> {
  return sb.exec(podName, argv, { timeoutMs });
}

/** Runs a fixture client in the client pod and parses its JSON line. */
async function client(t: Test, podName: string, argv: string[]): Promise<Record<string, unknown> | undefined> {
  const r = await exec(podName, [NODE, FIXTURES.client, ...argv]);
  t.equal(r.code, 0, `client ${argv.join(' ')}${r.code === 0 ? '' : `: ${r.stderr}`}`);
  try {
    return JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** What the source node (node-1) reports for the client talking to `dest`, and the destination node when across. */
function flows(dest: 'near' | 'far', source = 'client'): { src: Record<string, string>; dst: Record<string, string> | undefined } {
  const peer = { source_workload: source, source_workload_namespace: NS, destination_workload: dest, destination_workload_namespace: NS, destination_service: fqdn(dest) };
  const src = { ...peer, reporter: 'source', source_principal: `spiffe://cluster.local/ns/${NS}/sa/${source}`, connection_security_policy: dest === 'far' ? 'mutual_tls' : 'none' };
  const dst = dest === 'far' ? { ...peer, reporter: 'destination', source_principal: `spiffe://cluster.local/ns/${NS}/sa/${source}`, connection_security_policy: 'mutual_tls' } : undefined;
  return { src, dst };
}

/** Asserts each metric grew by at least its minimum while `action` ran. */
async function counted<T>(t: Test, checks: DeltaCheck[], action: () => Promise<T>): Promise<T> {
  const before = await scrapeAll(metricsUrls);
  const result = await action();
  const deltas = await deltasEventually(metricsUrls, before, checks);
  checks.forEach((c, i) => {
    const shown = Object.entries(c.labels).map(([k, v]) => `${k}=${v}`).join(',');
    t.ok(deltas[i]! >= c.atLeast, `${c.node} ${c.name}{${shown}} +${deltas[i]} (want >= ${c.atLeast})`);
  });
  return result;
}

for (const dest of ['near', 'far'] as const) {
  const where = dest === 'near' ? 'same node' : 'cross node';
  const host = fqdn(dest);
  const { src, dst } = flows(dest);

  t.test(`HTTP/1.1 ${where}: keep-alive, chunked`, async (t) => {
    const out = await counted(
      t,
      [
        // connection_security_policy tells same node (none) from through the tunnel (mutual_tls). Across
        // nodes the destination's proxy parses each request too, and reports it (reporter="destination").
        { node: 'node-1', name: 'istio_requests_total', labels: { ...src, request_protocol: 'http', response_code: '200' }, atLeast: 2 },
        ...(dst ? [{ node: 'node-2', name: 'istio_requests_total', labels: { ...dst, request_protocol: 'http', response_code: '200' }, atLeast: 2 }] : []),
      ],
      () => exec(`${NS}/client`, ['curl', '-sS', '--max-time', '60', '-D', '-', '-w', '##connects=%{num_connects} version=%{http_version}\n', `http://${host}/`, `http://${host}/chunked`]),
    );
    t.equal(out.code, 0, `curl: ${out.stderr}`);
    const [first, second] = out.stdout.split(/##connects=\d+ version=[\d.]+\n/).slice(0, 2);
    const meta = [...out.stdout.matchAll(/##connects=(\d+) version=([\d.]+)/g)].map((m) => [Number(m[1]), m[2]]);
    t.same(meta, [[1, '1.1'], [0, '1.1']], 'two HTTP/1.1 transfers on one connection (the second reused it)');
    t.match(first, /^HTTP\/1\.1 200/);
    const body = JSON.parse(first!.slice(first!.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
    t.match(body, { pod: dest, httpVersion: '1.1', path: '/' }, `answered by ${dest}`);
    t.match(second, /^HTTP\/1\.1 200/);
    t.match(second, /\r\ntransfer-encoding: chunked\r\n/i, 'chunked response');
    t.match(second, new RegExp(`chunk 0 from ${dest}\nchunk 1 from ${dest}\nchunk 2 from ${dest}\nchunk 3 from ${dest}\nchunk 4 from ${dest}\n$`), 'whole chunked body');
  });

  t.test(`HTTP/2 prior knowledge ${where}: curl and h2load`, async (t) => {
    const out = await counted(t, [{ node: 'node-1', name: 'istio_requests_total', labels: { ...src, request_protocol: 'http', response_code: '200' }, atLeast: 1 + 40 }], async () => {
      // One URL per curl: curl 7.88 fails a second request on a reused h2c connection to a node:http2
      // server even without the mesh ("Error in the HTTP2 framing layer"); h2load covers multiplexing.
      const curl = await exec(`${NS}/client`, ['curl', '-sS', '--max-time', '60', '--http2-prior-knowledge', '-w', '##version=%{http_version}\n', `http://${host}:81/a`]);
      const h2load = await exec(`${NS}/client`, ['h2load', '-n', '40', '-c', '2', '-m', '10', `http://${host}:81/load`]);
      return { curl, h2load };
    });
    t.equal(out.curl.code, 0, `curl: ${out.curl.stderr}`);
    t.match(out.curl.stdout, /##version=2\n$/, 'curl spoke HTTP/2');
    t.match(JSON.parse(out.curl.stdout.split('##')[0]!), { pod: dest, path: '/a', httpVersion: '2.0' }, 'the server saw HTTP/2');
    t.equal(out.h2load.code, 0, `h2load: ${out.h2load.stderr}`);
    t.match(out.h2load.stdout, /requests: 40 total, 40 started, 40 done, 40 succeeded, 0 failed, 0 errored/, 'h2load: 40 multiplexed requests succeeded');
    t.match(out.h2load.stdout, /status codes: 40 2xx/);
  });

  t.test(`gRPC ${where}: unary and server streaming`, async (t) => {
    const r = await counted(t, [{ node: 'node-1', name: 'istio_requests_total', labels: { ...src, request_protocol: 'grpc', response_code: '200' }, atLeast: 2 }], () =>
      client(t, `${NS}/client`, ['grpc', `${host}:${PORTS.grpc}`]),
    );
    t.same(r, { unary: { pod: dest, message: 'hello, e2e' }, stream: [0, 1, 2, 3, 4].map((seq) => ({ pod: dest, seq })) });
  });

  t.test(`WebSocket ${where}: upgrade and framed echo`, async (t) => {
    const r = await counted(t, [{ node: 'node-1', name: 'istio_tcp_connections_closed_total', labels: { ...src, request_protocol: 'http' }, atLeast: 1 }], () =>
      client(t, `${NS}/client`, ['ws', `${host}:8080`]),
    );
    t.match(r, { status: 101, pod: dest, closed: true });
    t.same(r?.['echoed'], [`${dest}:`.length + 13, `${dest}:`.length + 70_000], 'a short and a 70 kB frame echoed whole');
  });

  t.test(`plain TCP ${where}: 100 MB with half-close`, async (t) => {
    const checks: DeltaCheck[] = [
      { node: 'node-1', name: 'istio_tcp_received_bytes_total', labels: { ...src, request_protocol: 'tcp' }, atLeast: MB100 },
      { node: 'node-1', name: 'istio_tcp_sent_bytes_total', labels: { ...src, request_protocol: 'tcp' }, atLeast: 64 },
      { node: 'node-1', name: 'istio_tcp_connections_opened_total', labels: { ...src, request_protocol: 'tcp' }, atLeast: 1 },
      { node: 'node-1', name: 'istio_tcp_connections_closed_total', labels: { ...src, request_protocol: 'tcp' }, atLeast: 1 },
    ];
    if (dst) checks.push({ node: 'node-2', name: 'istio_tcp_received_bytes_total', labels: dst, atLeast: MB100 });
    const r = await counted(t, checks, () => client(t, `${NS}/client`, ['tcp', `${host}:${PORTS.tcpSink}`, String(MB100)]));
    t.match(r, { sent: MB100, bytes: MB100, pod: dest }, 'the server counted every byte, answered after our FIN, hashes match');
  });

  t.test(`the pod's own TLS ${where} passes through untouched`, async (t) => {
    const r = await counted(t, [{ node: 'node-1', name: 'istio_tcp_connections_opened_total', labels: { ...src, request_protocol: 'tcp' }, atLeast: 1 }], () =>
      client(t, `${NS}/client`, ['tls', `${host}:443`, appTls.fingerprint]),
    );
    t.same(r, { protocol: 'TLSv1.3', fingerprint: appTls.fingerprint, reply: `${dest} tls TLSv1.3: hello` }, "the server's own self-signed certificate, end to end");
  });

  t.test(`server-first protocol ${where}`, async (t) => {
    const r = await counted(t, [{ node: 'node-1', name: 'istio_tcp_connections_opened_total', labels: { ...src, request_protocol: 'tcp' }, atLeast: 2 }], async () => ({
      sniffed: await client(t, `${NS}/client`, ['banner', `${host}:25`]),
      declared: await client(t, `${NS}/client`, ['banner', `${host}:26`]),
    }));
    const want = { banner: `220 ${dest} weft-e2e ready`, reply: '221 bye' };
    t.same(r.sniffed, want, 'no appProtocol: the proxy waits, hears nothing, relays the banner');
    t.same(r.declared, want, 'appProtocol: tcp');
  });
}

t.test('underlay capture: a cross-node request is TLS 1.3 on 15008 and its marker never crosses in the clear', async (t) => {
  const ul = status.underlay;
  const farIp = pod(NS, 'far').ip;
  const file = join(dir, 'underlay.pcap');
  const cap = await Capture.start(ul.netns, ul.interface, file, 'tcp');
  t.teardown(() => cap.kill());
  const marker = `weft-e2e-marker-${process.pid}-${Date.now().toString(36)}`;
  const control = `weft-e2e-plaintext-control-${process.pid}-${Date.now().toString(36)}`;
  const { src, dst } = flows('far', 'prober');
  const meshed = await counted(
    t,
    [
      { node: 'node-1', name: 'istio_requests_total', labels: { ...src, request_protocol: 'http', response_code: '200' }, atLeast: 1 },
      { node: 'node-2', name: 'istio_requests_total', labels: { ...dst!, request_protocol: 'http', response_code: '200' }, atLeast: 1 },
    ],
    () => exec(`${NS}/prober`, ['curl', '-sS', '--max-time', '60', '-H', `x-marker: ${marker}`, '--data-binary', marker, `http://${fqdn('far')}/echo`]),
  );
  // Control: a pod outside the mesh posts to the same server pod directly; that crosses the underlay in
  // plaintext, so the capture must show it (proves the capture sees pod traffic at all).
  const plain = await exec('outside/outsider', ['curl', '-sS', '--max-time', '60', '--data-binary', control, `http://${farIp}:${PORTS.http}/echo`]);
  await sleep(500);
  const pcap = await cap.stop();

  t.equal(meshed.code, 0, `meshed curl: ${meshed.stderr}`);
  t.match(JSON.parse(meshed.stdout || '{}'), { pod: 'far', echo: marker }, 'the server got the marker');
  t.equal(plain.code, 0, `control curl: ${plain.stderr}`);
  t.match(JSON.parse(plain.stdout || '{}'), { pod: 'far', echo: control });
  t.ok(pcap.includes(control), 'control: the plaintext request is visible in the capture');
  t.notOk(pcap.includes(marker), 'the marker never appears on the underlay');
  t.notOk(pcap.includes(Buffer.from(marker, 'utf16le')), 'nor in UTF-16');

  const n1 = node('node-1').ip;
  const n2 = node('node-2').ip;
  const tunnelPackets = cap.fields(`ip.src==${n1} && ip.dst==${n2} && tcp.dstport==15008 && tcp.len>0`, ['frame.number']);
  t.ok(tunnelPackets.length > 0, `node-1 → node-2:15008 carried the request (${tunnelPackets.length} data packets)`);
  const hello = cap.fields('tls.handshake.type==2', ['ip.src', 'tcp.srcport', 'tls.handshake.version', 'tls.handshake.extensions.supported_version'], ['tcp.port==15008,tls']);
  t.ok(hello.length > 0, 'a ServerHello from the destination node was captured');
  for (const [ip, port, legacy, selected] of hello) {
    t.same([ip, port], [n2, '15008'], 'from node-2 tunnel port');
    t.equal(legacy, '0x0303', 'legacy_version 1.2, as TLS 1.3 requires');
    t.equal(selected, '0x0304', 'supported_versions selects TLS 1.3');
  }
  const proberIp = pod(NS, 'prober').ip;
  t.same(cap.fields(`ip.addr==${proberIp}`, ['frame.number']), [], 'no packet of the meshed pod itself on the underlay: only its node proxy talks there');
});

t.test('a proxy holding a certificate from another CA is refused by the tunnel', async (t) => {
  const far = pod(NS, 'far');
  const farId = `spiffe://cluster.local/ns/${NS}/sa/server`;
  const r = await counted(t, [{ node: 'node-2', name: 'weft_tunnel_handshake_failures_total', labels: { side: 'server', reason: 'untrusted_ca' }, atLeast: 1 }], () =>
    exec('outside/outsider', [NODE, FIXTURES.rogue, `${node('node-2').ip}:15008`, farId, `${far.ip}:${PORTS.tcpSink}`, `spiffe://cluster.local/ns/${NS}/sa/client`]),
  );
  t.equal(r.code, 0, `rogue: ${r.stderr}`);
  const out = JSON.parse(r.stdout || '{}') as { tlsProtocol?: string; serverIds?: string[]; outcome?: string };
  t.equal(out.tlsProtocol, 'TLSv1.3', 'it reached the real tunnel listener');
  t.same(out.serverIds, [farId], 'which presented the destination identity');
  t.notMatch(out.outcome ?? '', /^status/, `no CONNECT answered (${out.outcome})`);
});
