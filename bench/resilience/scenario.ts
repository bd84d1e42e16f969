// The resilience scenarios' sandbox and load, shared by the bench commands (bench/resilience/*.ts) and the
// end-to-end tests: namespace `res` in the mesh with an HTTP+echo server on each node (near: node-1,
// far: node-2) and a client pod on node-1 that runs the open-loop load (fixtures/load.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import '../../cli/commands.js';
import { down } from '../../sandbox/down.js';
import { spawnIn } from '../../sandbox/host/enter.js';
import { WEFT_BIN } from '../../sandbox/mesh.js';
import type { PodPlan } from '../../sandbox/plan.js';
import { podEnv, podTarget } from '../../sandbox/pods.js';
import type { SandboxState } from '../../sandbox/state.js';
import { sandboxStatus } from '../../sandbox/status.js';
import { up } from '../../sandbox/up.js';

const here = dirname(fileURLToPath(import.meta.url));
export const FIXTURES = { server: join(here, 'fixtures', 'server.js'), load: join(here, 'fixtures', 'load.js') };
export const NS = 'res';

/** Extra namespace YAML (e.g. a fail-mode annotation) can be appended by a scenario. */
export function resilienceSpec(nsAnnotations: Record<string, string> = {}): string {
  const ann = Object.keys(nsAnnotations).length ? `, annotations: { ${Object.entries(nsAnnotations).map(([k, v]) => `${k}: ${v}`).join(', ')} }` : '';
  const server = (name: string, node: string) => `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${NS}, labels: { app: ${name} } }
spec:
  nodeName: ${node}
  serviceAccountName: server
  containers: [{ name: server, command: [${process.execPath}, ${FIXTURES.server}], env: [{ name: POD, value: ${name} }] }]
---
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ${NS} }
spec:
  selector: { app: ${name} }
  ports:
    - { name: http, port: 80, targetPort: 8080, appProtocol: http }
    - { name: tcp, port: 9000, targetPort: 9000, appProtocol: tcp }
`;
  return [
    `apiVersion: v1
kind: Namespace
metadata: { name: ${NS}, labels: { weft.io/mesh: enabled }${ann} }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: server, namespace: ${NS} }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: client, namespace: ${NS} }
`,
    server('near', 'node-1'),
    server('far', 'node-2'),
    `
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: ${NS}, labels: { app: client } }
spec:
  nodeName: node-1
  serviceAccountName: client
  containers: [{ name: main, command: [sleep, infinity] }]
`,
  ].join('---\n');
}

export interface ResilienceSandbox {
  id: string;
  state: SandboxState;
  client: PodPlan;
  vip: { near: string; far: string };
  down(): Promise<void>;
}

export async function buildResilienceSandbox(id: string, say: (l: string) => void, spec = resilienceSpec(), controllerFlags: string[] = []): Promise<ResilienceSandbox> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-resilience-'));
  const specFile = join(dir, 'spec.yaml');
  writeFileSync(specFile, spec);
  const state = await up({ id, nodes: 2, specFile, detached: true, progress: (l) => say(`sandbox ${l}`), readyTimeoutMs: 120_000, controllerFlags });
  const status = sandboxStatus(state);
  const vip = (name: string) => {
    const s = status.services.find((x) => x.namespace === NS && x.name === name);
    if (!s?.clusterIP) throw new Error(`no ClusterIP for ${NS}/${name}`);
    return s.clusterIP;
  };
  const client = state.plan.pods.find((p) => p.namespace === NS && p.name === 'client')!;
  return { id, state, client, vip: { near: vip('near'), far: vip('far') }, down: async () => void (await down(id, { self: process.pid })) };
}

export interface LoadSummary {
  sent: number;
  ok: number;
  failed: number;
  errors: Record<string, number>;
  failures: { at: number; why: string }[];
  maxMs: number;
  seconds: number;
  achievedRps: number;
  stream?: { echoes: number[]; error: string };
}

export interface LoadRun {
  startedAt: number;
  stop(): Promise<LoadSummary>;
}

/** Starts the load in the client pod; resolves once it runs. */
export async function startLoad(sb: ResilienceSandbox, o: { rate: number; targets: ('near' | 'far')[]; stream?: 'near' | 'far'; timeoutMs?: number }): Promise<LoadRun> {
  const argv = [process.execPath, FIXTURES.load, '--rate', String(o.rate), '--timeout', String(o.timeoutMs ?? 5000), ...o.targets.flatMap((t) => ['--target', `${sb.vip[t]}:80`]), ...(o.stream ? ['--stream', `${sb.vip[o.stream]}:9000`] : [])];
  const child: ChildProcess = spawnIn(podTarget(sb.client), argv, { env: podEnv(sb.client, {}), stdio: ['pipe', 'pipe', 'pipe'], detached: false });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const startedAt = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`load did not start: ${out}${err}`)), 30_000);
    const on = () => {
      const m = /^started (\d+)/m.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', on);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', on);
    child.on('exit', () => reject(new Error(`load exited: ${out}${err}`)));
  });
  return {
    startedAt,
    stop: () =>
      new Promise((resolve, reject) => {
        child.on('close', () => {
          const line = out.split('\n').find((l) => l.startsWith('{'));
          if (!line) return reject(new Error(`no summary from the load: ${out}${err}`));
          // a parse error must reach the caller (whose finally takes the sandbox down), not crash the process
          try {
            resolve(JSON.parse(line) as LoadSummary);
          } catch (e) {
            reject(new Error(`the load's summary is not JSON (${(e as Error).message}): ${line.slice(0, 200)}…`));
          }
        });
        child.stdin!.end();
      }),
  };
}

/** `weft sandbox restart-agent <node>`; resolves with its output and timing. */
export function restartAgent(id: string, node: string, extra: string[] = []): Promise<{ code: number | null; out: string; startedAt: number; endedAt: number }> {
  const startedAt = Date.now();
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [WEFT_BIN, 'sandbox', 'restart-agent', node, '--id', id, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', (code) => resolve({ code, out: out.trim(), startedAt, endedAt: Date.now() }));
  });
}

/** Echoes of the long stream in [from, to). */
export function echoesBetween(echoes: number[], from: number, to: number): number {
  return echoes.filter((t) => t >= from && t < to).length;
}

export function longestGap(echoes: number[]): number {
  let g = 0;
  for (let i = 1; i < echoes.length; i++) g = Math.max(g, echoes[i]! - echoes[i - 1]!);
  return g;
}

/** Writes a scenario's result to bench/results/<kind>-<date>.json; returns the file. */
export function writeResult(kind: string, result: unknown): string {
  const dir = join(process.cwd(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${kind}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  return file;
}

/** Runs `main` when `moduleUrl` is the script node was started with; a failure is printed, exit 1. */
export function runAsMain(moduleUrl: string, main: () => Promise<void>): void {
  if (moduleUrl !== `file://${process.argv[1]}`) return;
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
