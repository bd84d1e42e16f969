// The bench's own sandbox: two nodes, a meshed client and a non-meshed client on node-1, and one server
// pod on each node behind a ClusterIP Service. Pods run `sleep infinity`; the bench starts every program
// it measures (upstream nginx, echo server, sidecar peers, load generators) inside them itself, so it
// owns their config, pid and CPU pinning. The sandbox is built and removed through its own modules with
// an id of our own, so a developer's sandbox and other tests are never touched.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import '../cli/commands.js';
import { COMMANDS } from '../cli/registry.js';
import { down } from '../sandbox/down.js';
import { agentPidOf } from '../sandbox/mesh.js';
import { spawnIn } from '../sandbox/host/enter.js';
import type { PodPlan } from '../sandbox/plan.js';
import { podEnv, podTarget } from '../sandbox/pods.js';
import type { SandboxState } from '../sandbox/state.js';
import { sandboxStatus, type SandboxStatus } from '../sandbox/status.js';
import { up } from '../sandbox/up.js';

/** Ports of the upstream in each server pod. */
export const UPSTREAM = { http: 8080, h2c: 8081, tcp: 9000 } as const;
/** Ports of each Service (what clients dial on the ClusterIP). */
export const SERVICE_PORT = { http: 80, h2c: 81, tcp: 9000 } as const;

export type Scope = 'same-node' | 'cross-node';

export interface Server {
  pod: PodPlan;
  vip: string;
}

export interface Topology {
  id: string;
  state: SandboxState;
  status: SandboxStatus;
  /** why Weft paths cannot run (no agent in this build, or the mesh failed); undefined when they can */
  meshUnavailable: string | undefined;
  meshedClient: PodPlan;
  plainClient: PodPlan;
  /** meshed server pods (namespace bench): what the Weft path calls */
  servers: Record<Scope, Server>;
  /**
   * The same servers outside the mesh (namespace plain), for the direct path and the sidecar peers: a
   * meshed pod's inbound connections from outside the mesh pass its node proxy (inbound capture), so the
   * baselines would carry Weft's destination half.
   */
  plainServers: Record<Scope, Server>;
  agentPid(node: string): number | undefined;
}

export function benchSpec(): string {
  const server = (name: string, node: string, ns = 'bench') => `---
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${ns}, labels: { app: ${name} } }
spec:
  nodeName: ${node}
  ${ns === 'bench' ? 'serviceAccountName: server' : ''}
  containers:
    - name: main
      command: [sleep, infinity]
      ports:
        - { name: http, containerPort: ${UPSTREAM.http} }
        - { name: h2c, containerPort: ${UPSTREAM.h2c} }
        - { name: tcp, containerPort: ${UPSTREAM.tcp} }
---
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ${ns} }
spec:
  selector: { app: ${name} }
  ports:
    - { name: http, port: ${SERVICE_PORT.http}, targetPort: ${UPSTREAM.http}, appProtocol: http }
    - { name: h2c, port: ${SERVICE_PORT.h2c}, targetPort: ${UPSTREAM.h2c}, appProtocol: kubernetes.io/h2c }
    - { name: tcp, port: ${SERVICE_PORT.tcp}, targetPort: ${UPSTREAM.tcp}, appProtocol: tcp }
`;
  const client = (ns: string, node: string) => `---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: ${ns}, labels: { app: client } }
spec:
  nodeName: ${node}
  ${ns === 'bench' ? 'serviceAccountName: client' : ''}
  containers:
    - name: main
      command: [sleep, infinity]
`;
  return `# Written by the Weft bench (bench/topology.ts); the sandbox it describes exists only during a run.
apiVersion: v1
kind: Namespace
metadata: { name: bench, labels: { weft.io/mesh: enabled } }
---
apiVersion: v1
kind: Namespace
metadata: { name: plain }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: client, namespace: bench }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: server, namespace: bench }
${client('bench', 'node-1')}${client('plain', 'node-1')}${server('server-a', 'node-1')}${server('server-b', 'node-2')}${server('server-a', 'node-1', 'plain')}${server('server-b', 'node-2', 'plain')}`;
}

/** Why the mesh cannot run in this build, as `weft sandbox up` decides it. */
export function meshAvailability(): string | undefined {
  const missing = ['controller', 'agent'].filter((c) => !COMMANDS.has(c));
  return missing.length ? `this build has no \`weft ${missing.join('`/`weft ')}\` command yet (the node proxy has not landed)` : undefined;
}

export async function buildTopology(opts: { id: string; dir: string; say: (l: string) => void; signal?: AbortSignal }): Promise<Topology> {
  const specFile = join(opts.dir, 'bench-sandbox.yaml');
  writeFileSync(specFile, benchSpec());
  const meshDisabled = meshAvailability();
  const state = await up({
    id: opts.id,
    nodes: 2,
    specFile,
    detached: true,
    progress: (l) => opts.say(`sandbox ${l}`),
    readyTimeoutMs: 90_000,
    ...(meshDisabled ? { meshDisabled } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const status = sandboxStatus(state);
  const pod = (ns: string, name: string) => {
    const p = state.plan.pods.find((x) => x.namespace === ns && x.name === name);
    if (!p) throw new Error(`bench sandbox has no pod ${ns}/${name}`);
    return p;
  };
  const vip = (name: string, ns = 'bench') => {
    const s = status.services.find((x) => x.namespace === ns && x.name === name);
    if (!s?.clusterIP) throw new Error(`bench sandbox has no ClusterIP for service ${ns}/${name}`);
    return s.clusterIP;
  };
  return {
    id: opts.id,
    state,
    status,
    meshUnavailable: meshDisabled,
    meshedClient: pod('bench', 'client'),
    plainClient: pod('plain', 'client'),
    servers: {
      'same-node': { pod: pod('bench', 'server-a'), vip: vip('server-a') },
      'cross-node': { pod: pod('bench', 'server-b'), vip: vip('server-b') },
    },
    plainServers: {
      'same-node': { pod: pod('plain', 'server-a'), vip: vip('server-a', 'plain') },
      'cross-node': { pod: pod('plain', 'server-b'), vip: vip('server-b', 'plain') },
    },
    agentPid: (node) => agentPidOf(state.plan, node) ?? state.pids.agents[node],
  };
}

export async function removeTopology(id: string): Promise<void> {
  await down(id, { self: process.pid });
}

/** Starts a long-running program in a pod (its cgroup and namespaces), output appended to `log`. */
export function startInPod(pod: PodPlan, argv: string[], logFd: number): ChildProcess {
  const child = spawnIn(podTarget(pod), argv, { env: podEnv(pod, {}), stdio: ['ignore', logFd, logFd], detached: true });
  child.on('error', () => {});
  return child;
}

export interface RunOutput {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion in a pod; kills it after timeoutMs. */
export function runInPod(pod: PodPlan, argv: string[], timeoutMs: number): Promise<RunOutput> {
  return new Promise((resolve) => {
    const child = spawnIn(podTarget(pod), argv, { env: podEnv(pod, {}), stdio: ['ignore', 'pipe', 'pipe'], detached: false });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: stderr + e.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs a command in a pod's network namespace only (iptables needs no cgroup or mount namespace). */
export function runInNetns(netns: string, argv: string[]): Promise<RunOutput> {
  return new Promise((resolve) => {
    const child = spawn('nsenter', [`--net=/run/netns/${netns}`, '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => resolve({ code: -1, stdout, stderr: e.message }));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
