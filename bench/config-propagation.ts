// How long a config change takes to be in force, seen by an unmodified client and split by the mesh's own
// timings (issue 12: a split moved to 100/0 takes effect for new requests within 1 s; issue 11: a policy in
// force on every node within 1 s). On a 2-node sandbox, a client pod on node-1 calls the Service `split`
// with curl in a loop (a new connection per request, sandbox/request-loop.ts); an HTTPRoute sends all of it
// to v1 (node-1) or all to v2 (node-2), and each round flips it, watched by a loop of its own. Per round:
//   effect       from the apply (the moment it was sent) to the first request from which every request went
//                to the new backend (an upper bound: it is the start of a request, ~20 ms apart)
//   accepted     the apply's answer (the controller validated and stored it)
//   controller   weft_controller_config_wait/build_seconds, and propagation (oldest change to ACK) per agent
//   agents       weft_config_apply_seconds{step}: receive, merge, capture, rebuild, total
//
//   node dist/bench/config-propagation.js [--rounds 10] [--period-ms 1500] [--via api|cli|dir] [--id ID]
// (--period-ms: how long requests are observed after each apply)
//
// --via api posts to the controller's HTTP API (as `weft apply` does, without the CLI's start-up), cli runs
// `weft apply -f`, dir writes the route into the controller's watched --config-dir. Results (raw samples
// included) go to bench/results/config-propagation-*.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import http from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { parseExposition, type Sample } from '../controller/telemetry/exposition.js';
import { APPLY_PATH } from '../controller/api/paths.js';
import { startSandbox, uniqueSandboxId, type SandboxHandle } from '../sandbox/api.js';
import { WEFT_BIN } from '../sandbox/mesh.js';
import { effectOf, loopClientYaml, startRequestLoop, type LoopSample } from '../sandbox/request-loop.js';
import { runDirFor } from '../sandbox/state.js';
import { median } from './stats.js';

const NS = 'prop';
const HOST = `split.${NS}.svc.cluster.local`;
// each backend answers with its pod's name; nothing mesh-aware
const SERVER = `require('http').createServer((q, r) => r.end(process.env.POD)).listen(8080)`;

const route = (v1: number, v2: number) => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: split, namespace: ${NS} }
spec:
  parentRefs: [{ group: "", kind: Service, name: split }]
  rules:
    - backendRefs: [{ name: v1, port: 80, weight: ${v1} }, { name: v2, port: 80, weight: ${v2} }]
`;

function spec(withRoute: boolean): string {
  const server = (name: string, node: string) => `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${NS}, labels: { pod: ${name} } }
spec:
  nodeName: ${node}
  containers: [{ name: s, command: [${process.execPath}, -e, "${SERVER}"], env: [{ name: POD, value: ${name} }] }]
---
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ${NS} }
spec: { selector: { pod: ${name} }, ports: [{ name: http, port: 80, targetPort: 8080, appProtocol: http }] }
`;
  return [
    loopClientYaml(NS, 'node-1'),
    `apiVersion: v1
kind: Service
metadata: { name: split, namespace: ${NS} }
spec: { selector: { pod: v1 }, ports: [{ name: http, port: 80, targetPort: 8080, appProtocol: http }] }
`,
    server('v1', 'node-1'),
    server('v2', 'node-2'),
    ...(withRoute ? [route(100, 0)] : []),
  ].join('---\n');
}

function scrape(url: string): Promise<Sample[]> {
  // a fresh connection each time: the sandbox's forwarders close idle ones
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, timeout: 10_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => (res.statusCode === 200 ? resolve(parseExposition(body, (n) => n.startsWith('weft_'))) : reject(new Error(`GET ${url}: ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}

function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

/** mean of a histogram over the observations between two scrapes, in ms; undefined: none */
function meanMs(before: Sample[], after: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const n = total(after, `${name}_count`, labels) - total(before, `${name}_count`, labels);
  if (n <= 0) return undefined;
  return ((total(after, `${name}_sum`, labels) - total(before, `${name}_sum`, labels)) / n) * 1000;
}

interface Round {
  to: 'v1' | 'v2';
  sentAt: number;
  acceptedMs: number;
  effect: ReturnType<typeof effectOf>;
  controller: { waitMs?: number | undefined; buildMs?: number | undefined; propagationMs?: number | undefined };
  agents: Record<string, Record<string, number | undefined>>;
}

const STEPS = ['receive', 'merge', 'capture', 'rebuild', 'total'];
/** old answers observed before each apply */
const LEAD_MS = 600;

async function applyRoute(sb: SandboxHandle, via: string, controller: string, yaml: string, dir: string, seq: number): Promise<void> {
  if (via === 'api') {
    const res = await fetch(controller + APPLY_PATH, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: yaml });
    if (!res.ok) throw new Error(`apply: HTTP ${res.status} ${await res.text()}`);
  } else if (via === 'cli') {
    const f = join(dir, `route-${seq}.yaml`);
    writeFileSync(f, yaml);
    const r = spawnSync(process.execPath, [WEFT_BIN, 'apply', '-f', f, '--controller', controller], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`weft apply: ${r.stderr}`);
  } else {
    // the controller's watched directory: the same file rewritten, as an operator's editor would
    writeFileSync(join(runDirFor(sb.id), 'config', 'zz-bench-route.yaml'), yaml);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '10' }, 'period-ms': { type: 'string', default: '1500' }, via: { type: 'string', default: 'api' }, id: { type: 'string' } } });
  const rounds = Number(values.rounds);
  const periodMs = Number(values['period-ms']);
  const via = values.via!;
  if (!['api', 'cli', 'dir'].includes(via)) throw new Error(`--via ${via}: one of api, cli, dir`);
  const say = (l: string) => process.stderr.write(`[config-propagation] ${l}\n`);
  const id = values.id ?? uniqueSandboxId();
  const results = join(process.cwd(), 'bench', 'results');
  mkdirSync(results, { recursive: true });
  say(`sandbox ${id}: 2 nodes, client on node-1, v1 on node-1, v2 on node-2; ${rounds} rounds, each watched for ${periodMs} ms after the apply, via ${via}`);
  const sb = await startSandbox({ id, nodes: 2, spec: spec(via !== 'dir') });
  const scratch = mkdtempSync(join(tmpdir(), 'weft-config-propagation-'));
  try {
    const status = sb.status();
    const controller = status.controller.web!.replace(/\/$/, '');
    const agents = Object.fromEntries(status.nodes.map((n) => [n.name, n.agent.metrics!]));
    if (via === 'dir') await applyRoute(sb, via, controller, route(100, 0), scratch, -1);
    for (let i = 0; ; i++) {
      const r = await sb.exec(`${NS}/client`, ['curl', '-sS', '--max-time', '2', `http://${HOST}/`]);
      if (r.stdout === 'v1') break;
      if (i > 100) throw new Error(`the split never answered from v1: ${r.stdout} ${r.stderr}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    const log: Round[] = [];
    const samples: LoopSample[] = [];
    const sleep = (ms: number) => new Promise((res) => setTimeout(res, Math.max(0, ms)));
    for (let i = 0; i < rounds; i++) {
      const to = i % 2 === 0 ? 'v2' : 'v1';
      // a loop of its own per round: LEAD_MS of the old answers, then periodMs (plus the CLI's start-up)
      // observed after the apply
      const loop = startRequestLoop(id, `${NS}/client`, `http://${HOST}/`, LEAD_MS + periodMs + (via === 'cli' ? 2000 : 0));
      await loop.running;
      const c0 = await scrape(`${controller}/metrics`);
      const a0 = Object.fromEntries(await Promise.all(Object.entries(agents).map(async ([n, u]) => [n, await scrape(u)] as const)));
      await sleep(LEAD_MS / 2);
      const sentAt = Date.now();
      await applyRoute(sb, via, controller, to === 'v1' ? route(100, 0) : route(0, 100), scratch, i);
      const acceptedMs = Date.now() - sentAt;
      const seen = await loop.done;
      samples.push(...seen);
      const c1 = await scrape(`${controller}/metrics`);
      const a1 = Object.fromEntries(await Promise.all(Object.entries(agents).map(async ([n, u]) => [n, await scrape(u)] as const)));
      log.push({
        to,
        sentAt,
        acceptedMs,
        effect: effectOf(seen, sentAt, (body) => body === to),
        controller: {
          waitMs: meanMs(c0, c1, 'weft_controller_config_wait_seconds'),
          buildMs: meanMs(c0, c1, 'weft_controller_config_build_seconds'),
          propagationMs: meanMs(c0, c1, 'weft_controller_config_propagation_seconds', { result: 'ack' }),
        },
        agents: Object.fromEntries(Object.keys(agents).map((n) => [n, Object.fromEntries(STEPS.map((s) => [s, meanMs(a0[n]!, a1[n]!, 'weft_config_apply_seconds', { step: s })]))])),
      });
    }
    const f = (x: number | undefined) => (x === undefined ? '   -' : x.toFixed(1).padStart(6));
    const lines = [
      `config propagation on a 2-node sandbox, via ${via}: ${rounds} split flips (100/0 <-> 0/100), an unmodified curl in a loop in a pod (${samples.length} requests, ${median(samples.map((s) => s.end - s.start)).toFixed(0)} ms each)`,
      ' round  to  effect  lastOld  accepted |  ctl wait  build  prop(ack) | node-1 total apply: receive merge capture rebuild | node-2 total (ms)',
      ...log.map((r, i) => {
        const n1 = r.agents['node-1'] ?? {};
        const n2 = r.agents['node-2'] ?? {};
        return `${String(i + 1).padStart(6)}  ${r.to}  ${f(r.effect.allNewFromMs)}  ${f(r.effect.lastOldMs)}  ${f(r.acceptedMs)}   | ${f(r.controller.waitMs)} ${f(r.controller.buildMs)} ${f(r.controller.propagationMs)}    | ${f(n1.total)} ${f(n1.receive)} ${f(n1.merge)} ${f(n1.capture)} ${f(n1.rebuild)} | ${f(n2.total)}`;
      }),
    ];
    const effects = log.flatMap((r) => (r.effect.allNewFromMs === undefined ? [] : [r.effect.allNewFromMs]));
    const summary = { medianMs: median(effects), maxMs: Math.max(...effects), notInForce: rounds - effects.length, acceptedMedianMs: median(log.map((r) => r.acceptedMs)) };
    lines.push(
      `effect for new requests: median ${summary.medianMs.toFixed(0)} ms, max ${summary.maxMs.toFixed(0)} ms` +
        `${summary.notInForce ? `; ${summary.notInForce} rounds not in force within the observed ${periodMs} ms` : ''} (apply answered in ${summary.acceptedMedianMs.toFixed(0)} ms median)`,
    );
    const file = join(results, `config-propagation-${via}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify({ via, rounds, periodMs, summary, log, samples }, null, 2) + '\n');
    lines.push(`results: ${file}`);
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await sb.down();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
