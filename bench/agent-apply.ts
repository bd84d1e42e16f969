// How long applying a big config holds an agent's event loop (issue 16: a 10k-Service config must never
// block it for more than 50 ms). The config is built by the controller's own pieces (store, incremental
// translator, update encoder: the exact chunks the agent receives), then fed to the agent's receive path one
// chunk per event-loop turn, as the network delivers them:
//   decode + collect (proto deserializer + UpdateAssembler, per chunk) -> applyConverted (snapshot or delta)
//   -> MeshState.update (the proxy's indexes) -> desiredFromMesh (capture's desired maps) -> last-good save.
// Each synchronous step is timed; the event-loop delay (perf_hooks, 1 ms resolution) is the longest stall
// a timer saw while it all ran.
//
//   node dist/bench/agent-apply.js [--services 10000] [--endpoints 5] [--nodes 50]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setImmediate as turn } from 'node:timers/promises';

import { silentLogger } from '../common/log.js';
import type { MeshConfig } from '../common/mesh.js';
import { LastGoodStore } from '../agent/config/last-good.js';
import { desiredFromMesh } from '../agent/redirect/desired.js';
import { MeshState } from '../agent/state/mesh-state.js';
import { UpdateEncoder, type EncodedUpdate } from '../controller/grpc/update-encoder.js';
import type { KubeObject } from '../controller/sources/types.js';
import { BUILTIN_KINDS, KindRegistry } from '../controller/store/kinds.js';
import { ObjectStore } from '../controller/store/object-store.js';
import { ConfigPublisher } from '../controller/translate/publisher.js';
import { applyConverted, UpdateAssembler } from '../proto/delta.js';
import { loadMeshProto } from '../proto/load.js';
import type { ConfigUpdate__Output } from '../proto/generated/weft/v1/ConfigUpdate.js';

const ARGS = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) ARGS.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const num = (k: string, d: number) => (ARGS.has(k) ? Number(ARGS.get(k)) : d);
const SERVICES = num('services', 10_000);
const EPS = num('endpoints', 5);
const NODES = num('nodes', 50);
const NAMESPACES = Math.max(1, Math.round(SERVICES / 100));
const node = (i: number) => `node-${String(i).padStart(3, '0')}`;
const ip = (first: number, n: number) => `${first}.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

function backends(s: number, gen: number): KubeObject[] {
  const ns = `ns-${s % NAMESPACES}`;
  const app = `svc-${s}`;
  const out: KubeObject[] = [];
  const endpoints = [];
  for (let e = 0; e < EPS; e++) {
    const n = s * EPS + e;
    const podIp = ip(10, 0x800000 + ((n + gen * 1_000_003) % 0x7fffff));
    const uid = `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
    out.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `${app}-${e}`, namespace: ns, uid, labels: { app } }, spec: { nodeName: node(n % NODES), serviceAccountName: app, containers: [{ name: 'app' }] }, status: { phase: 'Running', podIP: podIp, podIPs: [{ ip: podIp }] } });
    endpoints.push({ addresses: [podIp], conditions: { ready: true }, nodeName: node(n % NODES), targetRef: { kind: 'Pod', uid } });
  }
  out.push({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${app}-x`, namespace: ns, labels: { 'kubernetes.io/service-name': app } }, addressType: 'IPv4', endpoints, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] });
  return out;
}

const store = new ObjectStore(new KindRegistry(BUILTIN_KINDS), silentLogger);
const byKind = new Map<string, KubeObject[]>();
const add = (o: KubeObject) => (byKind.get(o.kind) ?? byKind.set(o.kind, []).get(o.kind)!).push(o);
for (let n = 0; n < NAMESPACES; n++) add({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `ns-${n}`, labels: { 'weft.io/mesh': 'enabled' } } });
for (let s = 0; s < SERVICES; s++) {
  add({ apiVersion: 'v1', kind: 'Service', metadata: { name: `svc-${s}`, namespace: `ns-${s % NAMESPACES}` }, spec: { clusterIP: ip(10, 0x600000 + s), selector: { app: `svc-${s}` }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } });
  for (const o of backends(s, 0)) add(o);
}
for (const [kind, objs] of byKind) store.replaceAll([kind], objs, 'bench');
const pub = new ConfigPublisher(store, { trustDomain: 'cluster.local', rootNamespace: 'weft-system', debounceMs: 1e9 });
const encoder = new UpdateEncoder(pub);
const decode = loadMeshProto().weft.v1.MeshController.service.StreamConfig.responseDeserialize as (b: Buffer) => ConfigUpdate__Output;
const me = node(0);
const stateDir = mkdtempSync(join(tmpdir(), 'weft-agent-apply-'));
const disk = new LastGoodStore(stateDir);
const mesh = new MeshState(me);

interface Steps {
  [step: string]: { max: number; total: number; count: number };
}

async function receive(u: EncodedUpdate, base: MeshConfig | undefined, steps: Steps): Promise<MeshConfig> {
  const time = <T>(step: string, fn: () => T): T => {
    const t0 = performance.now();
    const r = fn();
    const ms = performance.now() - t0;
    const s = (steps[step] ??= { max: 0, total: 0, count: 0 });
    s.max = Math.max(s.max, ms);
    s.total += ms;
    s.count++;
    return r;
  };
  const asm = new UpdateAssembler();
  let whole: ReturnType<UpdateAssembler['add']>;
  for (let i = 0; i < u.count; i++) {
    const bytes = u.chunk(i);
    await turn(); // the next chunk arrives in a later turn of the loop
    whole = time('decode + collect one chunk', () => asm.add(decode(bytes)));
  }
  const { config } = time('applyConverted', () => applyConverted(base, whole!.head, whole!.entries));
  await turn();
  time('MeshState.update (A1: proxy indexes)', () => mesh.update(config));
  await turn();
  time('desiredFromMesh (capture)', () => desiredFromMesh(config, me, { resolve: () => undefined } as never));
  await turn();
  const t0 = performance.now();
  await disk.save(config, 'BUNDLE');
  (steps['last-good save (sliced, total)'] ??= { max: 0, total: 0, count: 0 }).total += performance.now() - t0;
  return config;
}

async function scenario(name: string, u: EncodedUpdate, base: MeshConfig | undefined): Promise<MeshConfig> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  const steps: Steps = {};
  h.enable();
  const t0 = performance.now();
  const cfg = await receive(u, base, steps);
  const wall = performance.now() - t0;
  h.disable();
  console.log(`${name}: ${u.count} chunk(s), ${(u.bytes / 1048576).toFixed(1)} MiB, applied in ${wall.toFixed(0)} ms; longest event-loop stall ${(h.max / 1e6).toFixed(1)} ms (p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms)`);
  for (const [step, s] of Object.entries(steps)) console.log(`  ${step}: ${s.count > 1 ? `max ${s.max.toFixed(1)} ms, ` : ''}total ${s.total.toFixed(1)} ms${s.count > 1 ? ` over ${s.count}` : ''}`);
  return cfg;
}

console.log(`agent apply: ${SERVICES.toLocaleString('en-US')} services, ${(SERVICES * EPS).toLocaleString('en-US')} workloads, ${NODES} nodes; node ${process.version}`);
const v0 = pub.version;
const snap = await scenario('snapshot', encoder.update(me, undefined, 'BUNDLE')!, undefined);
for (const o of backends(SERVICES >> 1, 1)) store.upsert(o, 'bench');
pub.flush();
const one = await scenario('delta, 1 service rolled', encoder.update(me, { version: v0, bundle: 'BUNDLE' }, 'BUNDLE')!, snap);
const v1 = pub.version;
for (let k = 0; k < 1000; k++) for (const o of backends((k * 7 + 3) % SERVICES, 2)) store.upsert(o, 'bench');
pub.flush();
await scenario('delta, 1,000 services rolled', encoder.update(me, { version: v1, bundle: 'BUNDLE' }, 'BUNDLE')!, one);
pub.close();
rmSync(stateDir, { recursive: true, force: true });
