// Tracing end to end on a real two-node sandbox: the agents run with --trace-collector pointing at an
// OTLP/HTTP receiver inside the sandbox (in the controller's network namespace, on the underlay, where the
// node namespaces reach it; it decodes the protobuf with the official OpenTelemetry definitions) and
// --trace-sampling 100. One curl from a pod on node-1 to a pod on node-2 must give an access log line on
// each node and two exported spans, the source proxy's CLIENT span and the destination proxy's SERVER span
// (its child), all with one trace id: the one the source proxy started, since curl sends no context.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { startSandbox, uniqueSandboxId } from '../../sandbox/api.js';
import { CONTROLLER_IP } from '../../sandbox/plan.js';
import { weft } from '../helpers/sandbox.js';
import { distRoot } from '../helpers/paths.js';
import type { ReceivedSpan } from '../helpers/otlp-receiver.js';
import { NS, writeSpec } from './spec.js';

const OTLP_PORT = 4318;
const dir = mkdtempSync(join(tmpdir(), 'weft-tracing-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const { spec } = await writeSpec(dir);
// the namespace opts in to access logs from the start
const SPEC = spec.replace(`metadata: { name: ${NS}, labels: { weft.io/mesh: enabled } }`, `metadata: { name: ${NS}, labels: { weft.io/mesh: enabled }, annotations: { weft.io/access-log: json } }`);
if (SPEC === spec) throw new Error('the spec\'s e2e namespace was not found to annotate');

const id = uniqueSandboxId();
t.teardown(() => {
  const r = weft(['sandbox', 'down', '--id', id], { timeoutMs: 180_000 });
  if (r.status !== 0) console.error(`sandbox down --id ${id} failed: ${r.stderr}`);
});
const sb = await startSandbox({ id, spec: SPEC, nodes: 2, tracing: { collector: `http://${CONTROLLER_IP}:${OTLP_PORT}/v1/traces`, samplingPercent: 100 } });
const status = sb.status();

// the receiver, inside the sandbox: the controller's namespace, on its underlay address
const spans: ReceivedSpan[] = [];
const receiver = spawn('nsenter', [`--net=/run/netns/${status.controller.netns}`, process.execPath, join(distRoot, 'test', 'helpers', 'otlp-receiver.js'), CONTROLLER_IP, String(OTLP_PORT)], { stdio: ['pipe', 'pipe', 'pipe'] });
t.teardown(() => void receiver.kill('SIGKILL'));
let buf = '';
receiver.stdout.setEncoding('utf8').on('data', (d: string) => {
  buf += d;
  let nl;
  while ((nl = buf.indexOf('\n')) >= 0) {
    spans.push(JSON.parse(buf.slice(0, nl)) as ReceivedSpan);
    buf = buf.slice(nl + 1);
  }
});
await new Promise<void>((resolve, reject) => {
  let err = '';
  receiver.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    if (err.includes('otlp receiver on')) resolve();
  });
  receiver.once('exit', (code) => reject(new Error(`the OTLP receiver exited (${code}): ${err}`)));
});

const agentLog = (node: string) => readFileSync(status.nodes.find((n) => n.name === node)!.agent.log!, 'utf8');
const accessLines = (node: string, path: string) =>
  agentLog(node)
    .split('\n')
    .filter((l) => /"component":"[a-z.]*access"/.test(l) && l.includes(`"path":"${path}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

t.test('one request across two nodes: an access log line on each node and the source and destination spans, one trace id', async (t) => {
  const path = `/traced-${Date.now()}`;
  let code = '';
  for (let i = 0; i < 60 && code !== '200'; i++) {
    const r = await sb.exec(`${NS}/client`, ['curl', '-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code}', `http://far.${NS}.svc.cluster.local${path}`], { timeoutMs: 30_000 });
    code = r.stdout.trim();
    if (code !== '200') await sleep(500);
  }
  t.equal(code, '200', 'the request crossed the mesh');
  let mine: ReceivedSpan[] = [];
  for (let i = 0; i < 100; i++) {
    mine = spans.filter((s) => String(s.attributes['http.url']).endsWith(path));
    if (mine.length >= 2 && accessLines('node-2', path).length > 0) break;
    await sleep(200);
  }
  const client = mine.find((s) => s.kind === 'SPAN_KIND_CLIENT');
  const server = mine.find((s) => s.kind === 'SPAN_KIND_SERVER');
  t.ok(client, 'the source proxy\'s CLIENT span was exported');
  t.ok(server, 'the destination proxy\'s SERVER span was exported');
  t.equal(mine.length, 2, 'one span per proxy hop');
  t.equal(client?.attributes.node_id, 'node-1');
  t.equal(server?.attributes.node_id, 'node-2');
  t.equal(server?.traceId, client?.traceId, 'one trace id across the nodes');
  t.equal(server?.parentSpanId, client?.spanId, 'the destination\'s span is the child of the source\'s');
  t.equal(client?.parentSpanId, '', 'curl sent no context: the source proxy started the trace');
  t.equal(client?.name, `far.${NS}.svc.cluster.local:80/*`);
  t.match(client?.attributes, { 'http.method': 'GET', 'http.status_code': '200', upstream_cluster: `outbound|80||far.${NS}.svc.cluster.local`, 'source.principal': `spiffe://cluster.local/ns/${NS}/sa/client`, 'destination.principal': `spiffe://cluster.local/ns/${NS}/sa/server` });
  const out = accessLines('node-1', path);
  const inn = accessLines('node-2', path);
  t.same(out.map((l) => l.direction), ['outbound'], 'node-1 logged it outbound');
  t.same(inn.map((l) => l.direction), ['inbound'], 'node-2 logged it inbound');
  t.equal(out[0]?.trace_id, client?.traceId, 'node-1\'s access log names the exported trace id');
  t.equal(inn[0]?.trace_id, client?.traceId, 'node-2\'s access log names the exported trace id');
});
