// Scale benchmark for the controller's config distribution: N services with M endpoints each (default
// 10,000 / 50,000, backed by as many pods) pushed to A simulated agents (default 50) over loopback gRPC/TLS,
// through the real object store, translator, publisher and gRPC server.
//
//   node dist/bench/controller-scale.js [--services 10000] [--endpoints 5] [--agents 50] [--nodes 50]
//        [--storm-seconds 60] [--storm-services 100]   (the rollout storm; 0 seconds skips it)
//
// The controller runs in a child process (so its memory is its own, measured after a GC); the agents run
// in this process, each on its own TCP connection through a byte-counting TCP relay, subscribe, and ACK
// every version after checking it applies on top of the version they hold (agent 0 decodes and applies
// every update in full and checks the result; the others read only the update's header, so that 50 agents
// in one process measure the controller and not their own decoding). Per scenario: time
// from the change in the store to the last agent's ACK, and the bytes the controller sent (TLS, on the
// wire). Agents and controller share this machine's cores: absolute times are an upper bound.
import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import type { KubeObject } from '../controller/sources/types.js';

const ARGS = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) ARGS.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const num = (k: string, d: number) => (ARGS.has(k) ? Number(ARGS.get(k)) : d);
const SERVICES = num('services', 10_000);
const EPS = num('endpoints', 5);
const AGENTS = num('agents', 50);
const NODES = num('nodes', AGENTS);
const NAMESPACES = Math.max(1, Math.round(SERVICES / 100));
const TRUST_DOMAIN = 'cluster.local';

const tokenFor = (node: string) => `bench-token-${node}-0123456789abcdef`;
const nodeName = (i: number) => `node-${String(i).padStart(3, '0')}`;

// ---------------------------------------------------------------- the cluster's objects
function ip(first: number, n: number): string {
  return `${first}.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

function pod(ns: string, app: string, e: number, podN: number, podIp: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `${app}-${e}`, namespace: ns, uid: podUid(podN), labels: { app } },
    spec: { nodeName: nodeName(podN % NODES), serviceAccountName: app, containers: [{ name: 'app', ports: [{ name: 'http', containerPort: 8080 }] }] },
    status: { phase: 'Running', podIP: podIp, podIPs: [{ ip: podIp }], conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

const podUid = (podN: number) => `00000000-0000-4000-8000-${String(podN).padStart(12, '0')}`;

function slice(ns: string, app: string, endpoints: unknown[]): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${app}-abcde`, namespace: ns, labels: { 'kubernetes.io/service-name': app } },
    addressType: 'IPv4',
    endpoints,
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

/** one service's pods and EndpointSlice, at rollout `generation` (0: initial IPs) */
function serviceBackends(s: number, generation: number): KubeObject[] {
  const ns = `ns-${s % NAMESPACES}`;
  const app = `svc-${s}`;
  const out: KubeObject[] = [];
  const endpoints = [];
  for (let e = 0; e < EPS; e++) {
    const podN = s * EPS + e;
    const podIp = ip(10, 0x800000 + ((podN + generation * 1_000_003) % 0x7fffff));
    out.push(pod(ns, app, e, podN, podIp));
    endpoints.push({ addresses: [podIp], conditions: { ready: true }, nodeName: nodeName(podN % NODES), targetRef: { kind: 'Pod', namespace: ns, name: `${app}-${e}`, uid: podUid(podN) } });
  }
  out.push(slice(ns, app, endpoints));
  return out;
}

function* objects(): Generator<KubeObject> {
  for (let n = 0; n < NAMESPACES; n++) yield { apiVersion: 'v1', kind: 'Namespace', metadata: { name: `ns-${n}`, labels: { 'weft.io/mesh': 'enabled' } } };
  for (let i = 0; i < NODES; i++) {
    yield { apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName(i) }, status: { addresses: [{ type: 'InternalIP', address: ip(172, 0x100000 + i) }] } };
  }
  for (let s = 0; s < SERVICES; s++) {
    const ns = `ns-${s % NAMESPACES}`;
    const app = `svc-${s}`;
    const vip = ip(10, 0x600000 + s);
    yield {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: app, namespace: ns },
      spec: { clusterIP: vip, clusterIPs: [vip], selector: { app }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
    };
    yield* serviceBackends(s, 0);
  }
}

// ---------------------------------------------------------------- the controller (child process)
type ToChild =
  | { cmd: 'rollout'; services: number[]; seq: number }
  | { cmd: 'storm'; services: number[] }
  | { cmd: 'cpu'; seq: number }
  | { cmd: 'memory'; seq: number }
  | { cmd: 'stop' };
type Ready = { ready: true; port: number; trustBundlePem: string; loadMs: number; objects: number; firstVersion: number };
type Built = { seq: number; version: number; buildMs: number };
type Memory = { seq: number; memory: NodeJS.MemoryUsage };
type Cpu = { seq: number; cpu: NodeJS.CpuUsage };
/** every version the controller publishes during the storm, when it was built (controller clock = ours) */
type Published = { published: true; version: number; at: number };
type FromChild = Ready | Built | Memory | Cpu | Published;

async function controllerMain(): Promise<void> {
  const { silentLogger } = await import('../common/log.js');
  const { AgentRegistry } = await import('../controller/agents/registry.js');
  const { createTestCa } = await import('../controller/ca/test-ca.js');
  const { CsrAuthorizer } = await import('../controller/ca/csr-authorizer.js');
  const { BootstrapTokenAuthenticator } = await import('../controller/grpc/node-auth.js');
  const { ControllerGrpcServer } = await import('../controller/grpc/server.js');
  const { BUILTIN_KINDS, KindRegistry } = await import('../controller/store/kinds.js');
  const { ObjectStore } = await import('../controller/store/object-store.js');
  const { ConfigPublisher } = await import('../controller/translate/publisher.js');

  const send = (m: FromChild) => {
    if (process.connected) process.send!(m);
  };
  // never outlive the bench (the IPC channel closes when the parent exits or is killed)
  process.on('disconnect', () => process.exit(0));
  const testCa = await createTestCa({ trustDomain: TRUST_DOMAIN });
  const store = new ObjectStore(new KindRegistry(BUILTIN_KINDS), silentLogger);
  const t0 = performance.now();
  const byKind = new Map<string, KubeObject[]>();
  let count = 0;
  for (const o of objects()) {
    if (!byKind.has(o.kind)) byKind.set(o.kind, []);
    byKind.get(o.kind)!.push(o);
    count++;
  }
  for (const [kind, objs] of byKind) {
    const { refused } = store.replaceAll([kind], objs, 'bench');
    if (refused.length) throw new Error(`store refused ${refused.length} ${kind}: ${refused[0]!.error.message}`);
  }
  const publisher = new ConfigPublisher(store, { trustDomain: TRUST_DOMAIN, rootNamespace: 'weft-system', debounceMs: 100, logger: silentLogger });
  publisher.flush();
  const loadMs = performance.now() - t0;
  // registered before the gRPC server's listener, so buildMs is the translation alone, not the agents' deltas
  let pendingSeq = -1;
  let changedAt = 0;
  publisher.onConfig((v) => {
    if (pendingSeq < 0) return;
    send({ seq: pendingSeq, version: v.version, buildMs: performance.now() - changedAt });
    pendingSeq = -1;
  });
  const tokens: Record<string, string> = {};
  for (let i = 0; i < AGENTS; i++) tokens[nodeName(i)] = tokenFor(nodeName(i));
  const server = new ControllerGrpcServer({
    ca: testCa.ca,
    authorizer: new CsrAuthorizer(testCa.ca, store, silentLogger),
    publisher,
    registry: new AgentRegistry(),
    authenticator: new BootstrapTokenAuthenticator(tokens),
    logger: silentLogger,
  });
  const cert = await testCa.issueServerCert({ ips: ['127.0.0.1'], dnsNames: ['localhost'] });
  const port = await server.listen('127.0.0.1', 0, cert);

  let generation = 0;
  let storming = false;
  publisher.onConfig((v) => {
    if (storming) send({ published: true, version: v.version, at: Date.now() });
  });
  process.on('message', (m: ToChild) => {
    if (m.cmd === 'stop') {
      void server.close().then(() => process.exit(0));
      return;
    }
    if (m.cmd === 'cpu') {
      send({ seq: m.seq, cpu: process.cpuUsage() });
      return;
    }
    if (m.cmd === 'storm') {
      // a rollout step without waiting for its version: the storm drives changes faster than versions
      storming = true;
      generation++;
      for (const s of m.services) for (const o of serviceBackends(s, generation)) store.upsert(o, 'bench');
      return;
    }
    if (m.cmd === 'memory') {
      (globalThis as { gc?: () => void }).gc?.();
      send({ seq: m.seq, memory: process.memoryUsage() });
      return;
    }
    // a rollout: each named service's pods get new IPs (Pods and EndpointSlice updated, as the API would)
    generation++;
    pendingSeq = m.seq;
    changedAt = performance.now();
    for (const s of m.services) for (const o of serviceBackends(s, generation)) store.upsert(o, 'bench');
  });
  send({ ready: true, port, trustBundlePem: testCa.trustBundlePem(), loadMs, objects: count, firstVersion: publisher.version });
}

// ---------------------------------------------------------------- the agents (this process)
/**
 * version (1), snapshot (2) and base_version (3) of a serialized ConfigUpdate, read from the wire without
 * decoding the rest: 50 simulated agents sharing one process must not spend their time decoding 50 copies
 * of a 10 MB snapshot, or they (not the controller) would be what is measured.
 */
function updateHeader(buf: Buffer): { version: number; snapshot: boolean; baseVersion: number; more: boolean } {
  const out = { version: 0, snapshot: false, baseVersion: 0, more: false };
  let i = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = buf[i++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (i < buf.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) {
      const v = varint();
      if (field === 1) out.version = v;
      else if (field === 2) out.snapshot = v !== 0;
      else if (field === 3) out.baseVersion = v;
      else if (field === 14) out.more = v !== 0;
    } else if (wire === 2) {
      const len = varint(); // read before adding: `i += varint()` would add to the old i
      i += len;
    }
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error(`unexpected wire type ${wire} in ConfigUpdate`);
  }
  return out;
}

/** counts the bytes each way between the agents and the controller */
class ByteCountingRelay {
  toAgents = 0;
  toController = 0;
  port = 0;
  private readonly server: net.Server;
  constructor(target: number) {
    this.server = net.createServer((c) => {
      const up = net.connect(target, '127.0.0.1');
      c.on('data', (d) => {
        this.toController += d.length;
        if (!up.write(d)) c.pause();
      });
      up.on('drain', () => c.resume());
      up.on('data', (d) => {
        this.toAgents += d.length;
        if (!c.write(d)) up.pause();
      });
      c.on('drain', () => up.resume());
      const end = () => {
        c.destroy();
        up.destroy();
      };
      c.on('error', end).on('close', end);
      up.on('error', end).on('close', end);
    });
  }
  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }
  close(): void {
    this.server.close();
  }
}

interface SimAgent {
  node: string;
  acked: number;
  chunks: number;
  snapshots: number;
  deltas: number;
  nacks: number;
  reconnects: number;
  services: number;
  workloads: number;
  call: grpc.ClientDuplexStream<unknown, unknown> | undefined;
  client: grpc.Client;
}

async function agentsMain(): Promise<void> {
  const { loadMeshProto } = await import('../proto/load.js');
  const { applyConverted, UpdateAssembler } = await import('../proto/delta.js');
  type Update = Parameters<InstanceType<typeof UpdateAssembler>['add']>[0];
  type Config = ReturnType<typeof applyConverted>['config'];
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [...process.argv.slice(2), '--role', 'controller'], {
    execArgv: ['--expose-gc', '--max-old-space-size=4096'],
    stdio: 'inherit',
  });
  let seq = 0;
  const published: Published[] = [];
  const waiters = new Map<number, (m: FromChild) => void>();
  let ready!: (m: Ready) => void;
  const readyP = new Promise<Ready>((r) => (ready = r));
  child.on('message', (m: FromChild) => {
    if ('ready' in m) return ready(m);
    if ('published' in m) return void published.push(m);
    waiters.get(m.seq)?.(m);
  });
  child.on('exit', (code) => {
    if (!stopping) {
      console.error(`controller exited early (${code})`);
      process.exit(1);
    }
  });
  const ask = <T extends FromChild>(msg: ToChild & { seq: number }): Promise<T> =>
    new Promise((r) => {
      waiters.set(msg.seq, r as (m: FromChild) => void);
      child.send(msg);
    });
  let stopping = false;

  const t0 = performance.now();
  const info = await readyP;
  console.log(`controller: ${info.objects.toLocaleString('en-US')} objects loaded, validated and translated in ${info.loadMs.toFixed(0)} ms`);
  const relay = new ByteCountingRelay(info.port);
  await relay.listen();

  const mem = async () => (await ask<Memory>({ cmd: 'memory', seq: ++seq })).memory;
  const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
  const kib = (b: number) => (b < 1048576 ? `${(b / 1024).toFixed(1)} KiB` : mib(b));
  const memBefore = await mem();

  const proto = loadMeshProto();
  const STREAM_CONFIG = proto.weft.v1.MeshController.service.StreamConfig;
  const creds = grpc.credentials.createSsl(Buffer.from(info.trustBundlePem));
  const agents: SimAgent[] = [];
  let full: Config | undefined;
  const assembler = new UpdateAssembler();
  const subscribeStart = performance.now();
  for (let i = 0; i < AGENTS; i++) {
    const node = nodeName(i);
    const client = new proto.weft.v1.MeshController(`127.0.0.1:${relay.port}`, creds, {
      'grpc.ssl_target_name_override': 'localhost',
      'grpc.max_receive_message_length': -1,
      // one TCP connection per agent, as on a real cluster
      'grpc.use_local_subchannel_pool': 1,
    });
    const a: SimAgent = { node, acked: 0, chunks: 0, snapshots: 0, deltas: 0, nacks: 0, reconnects: 0, services: 0, workloads: 0, call: undefined, client };
    // like the real agent: on a broken stream, subscribe again (the controller then sends a snapshot)
    const open = () => {
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${tokenFor(node)}`);
      md.set('x-weft-node', node);
      // agent 0 decodes and applies every update in full; the others read the header only (see updateHeader)
      const call = client.makeBidiStreamRequest<unknown, Buffer | Update>(
        STREAM_CONFIG.path,
        STREAM_CONFIG.requestSerialize as (v: unknown) => Buffer,
        i === 0 ? (b: Buffer) => STREAM_CONFIG.responseDeserialize(b) as Update : (b: Buffer) => b,
        md,
      );
      a.call = call;
      call.on('data', (msg: Buffer | Update) => {
        const h = Buffer.isBuffer(msg) ? updateHeader(msg) : { version: Number(msg.version), snapshot: msg.snapshot, baseVersion: Number(msg.baseVersion), more: msg.more };
        // a big update comes in chunks (ConfigUpdate.more): the agent ACKs the version after the last one
        let whole: ReturnType<typeof assembler.add> | undefined;
        let chunkError = '';
        if (!Buffer.isBuffer(msg)) {
          try {
            whole = assembler.add(msg);
          } catch (e) {
            chunkError = String(e);
          }
        }
        a.chunks++;
        if (h.more) return;
        let ok = true;
        let error = '';
        if (h.snapshot) a.snapshots++;
        else {
          a.deltas++;
          if (h.baseVersion !== a.acked) {
            ok = false;
            error = `delta based on ${h.baseVersion}, holding ${a.acked}`;
          }
        }
        if (chunkError) {
          ok = false;
          error = chunkError;
        } else if (!Buffer.isBuffer(msg) && ok) {
          try {
            full = applyConverted(h.snapshot ? undefined : full, whole!.head, whole!.entries).config;
            a.services = full.services.length;
            a.workloads = full.workloads.length;
          } catch (e) {
            ok = false;
            error = String(e);
          }
        }
        if (ok) a.acked = h.version;
        else a.nacks++;
        call.write({ ack: { version: h.version, accepted: ok, error } });
      });
      call.on('error', (e: Error) => {
        if (stopping) return;
        a.reconnects++;
        if (a.reconnects <= 3) console.error(`${node}: stream error (${e.message}), subscribing again`);
        setTimeout(open, 500);
      });
      call.write({ subscribe: { haveVersion: a.acked } });
    };
    open();
    agents.push(a);
  }

  const allAcked = async (version: number, timeoutMs: number): Promise<void> => {
    const start = performance.now();
    while (agents.some((a) => a.acked < version)) {
      if (performance.now() - start > timeoutMs) throw new Error(`agents not converged after ${timeoutMs} ms: ${agents.filter((a) => a.acked < version).length} behind`);
      await new Promise((r) => setTimeout(r, 1));
    }
  };

  await allAcked(info.firstVersion, 900_000);
  const syncMs = performance.now() - subscribeStart;
  const memSynced = await mem();
  const results: Record<string, unknown>[] = [];
  console.log(
    `initial sync: ${AGENTS} agents ACKed the snapshot (${agents[0]!.services.toLocaleString('en-US')} services, ${agents[0]!.workloads.toLocaleString('en-US')} workloads) ` +
      `${syncMs.toFixed(0)} ms after subscribing; sent ${mib(relay.toAgents)} (${kib(relay.toAgents / AGENTS)} per agent); streams re-subscribed: ${agents.reduce((n, a) => n + a.reconnects, 0)}`,
  );
  results.push({ scenario: 'initial snapshot', ms: Math.round(syncMs), bytesToAgents: relay.toAgents, reconnects: agents.reduce((n, a) => n + a.reconnects, 0) });
  console.log(`controller memory (after GC): before agents rss ${mib(memBefore.rss)} heap ${mib(memBefore.heapUsed)}; synced rss ${mib(memSynced.rss)} heap ${mib(memSynced.heapUsed)}`);

  const spread = (n: number, step: number) => Array.from({ length: Math.min(n, SERVICES) }, (_, k) => (k * step + 3) % SERVICES);
  const scenarios: { name: string; services: number[] }[] = [
    { name: `1 service rolled (${EPS} endpoints move)`, services: [SERVICES >> 1] },
    { name: '1 other service rolled', services: [(SERVICES >> 1) + 1] },
    { name: '100 services rolled at once', services: spread(100, 97) },
    { name: '1,000 services rolled at once', services: spread(1000, 7) },
  ];
  for (const s of scenarios) {
    const bytes0 = relay.toAgents;
    const start = performance.now();
    const r = await ask<Built>({ cmd: 'rollout', services: s.services, seq: ++seq });
    await allAcked(r.version, 300_000);
    const ms = performance.now() - start;
    const bytes = relay.toAgents - bytes0;
    console.log(
      `${s.name}: all ${AGENTS} agents ACKed v${r.version} ${ms.toFixed(0)} ms after the store change ` +
        `(new version built ${r.buildMs.toFixed(0)} ms after the change, incl. any debounce wait); sent ${kib(bytes)} (${kib(bytes / AGENTS)} per agent)`,
    );
    results.push({ scenario: s.name, ms: Math.round(ms), buildMs: Math.round(r.buildMs), bytesToAgents: bytes, reconnects: agents.reduce((n, a) => n + a.reconnects, 0) });
  }
  // the rollout storm: STORM_SERVICES services (a different set each step) roll 10 times a second for
  // STORM_SECONDS; every 50 ms, how far the slowest agent is behind: the age of the oldest version it has
  // not ACKed yet (0 when it holds the newest)
  const STORM_SECONDS = num('storm-seconds', 60);
  const STORM_SERVICES = Math.min(num('storm-services', 100), SERVICES);
  if (STORM_SECONDS > 0) {
    const cpu0 = (await ask<Cpu>({ cmd: 'cpu', seq: ++seq })).cpu;
    const t0s = Date.now();
    let step = 0;
    let maxBehind = 0;
    const behindSamples: number[] = [];
    while (Date.now() - t0s < STORM_SECONDS * 1000) {
      if (Date.now() - t0s >= step * 100) {
        child.send({ cmd: 'storm', services: Array.from({ length: STORM_SERVICES }, (_, k) => (step * STORM_SERVICES + k * 13) % SERVICES) });
        step++;
      }
      const now = Date.now();
      const minAcked = Math.min(...agents.map((a) => a.acked));
      const pending = published.find((p) => p.version > minAcked);
      const behind = pending ? now - pending.at : 0;
      behindSamples.push(behind);
      maxBehind = Math.max(maxBehind, behind);
      await new Promise((r) => setTimeout(r, 50));
    }
    const last = published.at(-1);
    if (last) await allAcked(last.version, 120_000);
    const cpu1 = (await ask<Cpu>({ cmd: 'cpu', seq: ++seq })).cpu;
    const cpuS = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / 1e6;
    const wall = (Date.now() - t0s) / 1000;
    const sorted = [...behindSamples].sort((a, b) => a - b);
    console.log(
      `rollout storm: ${STORM_SERVICES} services rolled 10 times a second for ${STORM_SECONDS} s (${step} steps, ${published.length} versions): ` +
        `slowest agent behind at most ${maxBehind} ms (p99 ${sorted[Math.floor(sorted.length * 0.99)] ?? 0} ms); controller CPU ${cpuS.toFixed(1)} s in ${wall.toFixed(1)} s (${((cpuS / wall) * 100).toFixed(0)}% of one core)`,
    );
    results.push({ scenario: 'rollout storm', steps: step, versions: published.length, maxBehindMs: maxBehind, controllerCpuSeconds: cpuS, wallSeconds: wall });
  }
  const memEnd = await mem();
  const a0 = agents[0]!;
  const nacks = agents.reduce((n, a) => n + a.nacks, 0);
  const reconnects = agents.reduce((n, a) => n + a.reconnects, 0);
  console.log(
    `controller memory at the end: rss ${mib(memEnd.rss)} heap ${mib(memEnd.heapUsed)}; NACKs: ${nacks}; streams broken and re-subscribed: ${reconnects}; ` +
      `agent 0 holds ${a0.services} services and ${a0.workloads} workloads after ${a0.snapshots} snapshot(s) and ${a0.deltas} deltas`,
  );
  console.log(`total: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(JSON.stringify({ services: SERVICES, endpoints: SERVICES * EPS, agents: AGENTS, nodes: NODES, results, memory: { before: memBefore, synced: memSynced, end: memEnd }, nacks, reconnects }));

  stopping = true;
  for (const a of agents) {
    a.call?.cancel();
    a.client.close();
  }
  relay.close();
  child.send({ cmd: 'stop' });
  await new Promise((r) => child.once('exit', r));
  if (nacks || a0.services !== SERVICES || a0.workloads !== SERVICES * EPS) {
    console.error('FAILED: agents did not end with the whole mesh, or NACKed');
    process.exitCode = 1;
  }
}

if (ARGS.get('role') === 'controller') {
  controllerMain().catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  agentsMain().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
