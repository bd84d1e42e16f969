// Where the `weft` operator commands find the mesh, in this order:
//   1. --controller URL (or WEFT_CONTROLLER): an explicit controller; agents are then reached through it only.
//   2. A running sandbox on this machine (state under /run/weft-sandbox): --sandbox ID / WEFT_SANDBOX_ID,
//      else the default "dev" (what `npm run sandbox` starts), else the only one running. Its loopback
//      port-forwards give the controller, each agent's metrics and admin, and Prometheus.
//   3. Kubernetes, from the kubeconfig (KUBECONFIG or ~/.kube/config): `kubectl port-forward` to the
//      controller Service (and to each agent pod for admin), done for the user and stopped on exit.
// Nothing here connects anywhere but 127.0.0.1.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { WeftError } from '../common/errors.js';
import { PORTS } from '../common/ports.js';
import { pidAlive, readState, RUN_BASE, type SandboxState } from '../sandbox/state.js';

export interface AgentTarget {
  node: string;
  /** http://127.0.0.1:PORT/metrics, when reachable from here */
  metrics: string | null;
  /** http://127.0.0.1:PORT (the agent's loopback admin), when reachable from here */
  admin: string | null;
}

export interface Target {
  kind: 'flag' | 'sandbox' | 'kubernetes' | 'default';
  /** base URL of the controller's HTTP API, no trailing slash */
  controller: string;
  agents: AgentTarget[];
  prometheus: string | null;
  /** a human description, for errors: "sandbox dev", "--controller http://..." */
  describe: string;
  close(): void;
}

export class TargetError extends WeftError {
  constructor(message: string) {
    super('WEFT_ERR_TARGET', message);
  }
}

export interface TargetFlags {
  controller?: string | undefined;
  sandbox?: string | undefined;
  env?: NodeJS.ProcessEnv;
  runBase?: string;
}

function runningSandboxes(runBase: string): SandboxState[] {
  if (!existsSync(runBase)) return [];
  const out: SandboxState[] = [];
  for (const id of readdirSync(runBase).sort()) {
    const st = readState(join(runBase, id));
    if (st && st.phase === 'running' && (st.detached || pidAlive(st.pid)) && (!st.pids.controller || pidAlive(st.pids.controller))) out.push(st);
  }
  return out;
}

function forwardUrl(st: SandboxState, name: string): string | null {
  const f = st.forwards.find((x) => x.name === name);
  return f ? `http://127.0.0.1:${f.port}` : null;
}

export function sandboxTarget(st: SandboxState): Target {
  const controller = forwardUrl(st, 'controller-web');
  if (!controller) throw new TargetError(`sandbox "${st.id}" runs without a controller (${st.controllerDisabled ?? 'no forward'}); start one with the mesh: weft sandbox up`);
  return {
    kind: 'sandbox',
    controller,
    agents: st.plan.nodes.map((n) => ({
      node: n.name,
      metrics: forwardUrl(st, `${n.name}-metrics`) && `${forwardUrl(st, `${n.name}-metrics`)}/metrics`,
      admin: forwardUrl(st, `${n.name}-admin`),
    })),
    prometheus: forwardUrl(st, 'prometheus'),
    describe: `sandbox ${st.id}`,
    close() {},
  };
}

/** A sandbox picked by id, by default, or as the only one running. */
export function findSandbox(flags: TargetFlags): SandboxState | undefined {
  const env = flags.env ?? process.env;
  const base = flags.runBase ?? RUN_BASE;
  const want = flags.sandbox ?? env.WEFT_SANDBOX_ID;
  const running = runningSandboxes(base);
  if (want) {
    const st = running.find((s) => s.id === want);
    if (!st) throw new TargetError(`no sandbox "${want}" is running${running.length ? ` (running: ${running.map((s) => s.id).join(', ')})` : ''}; start it with: weft sandbox up --id ${want} --detach`);
    return st;
  }
  return running.find((s) => s.id === 'dev') ?? (running.length === 1 ? running[0] : undefined) ?? (running.length > 1 ? ambiguous(running) : undefined);
}

function ambiguous(running: SandboxState[]): never {
  throw new TargetError(`several sandboxes are running (${running.map((s) => s.id).join(', ')}); pick one with --sandbox ID (or WEFT_SANDBOX_ID)`);
}

function kubeconfigPath(env: NodeJS.ProcessEnv): string | undefined {
  const p = env.KUBECONFIG?.split(':').find((f) => existsSync(f)) ?? join(homedir(), '.kube', 'config');
  return existsSync(p) ? p : undefined;
}

/** `kubectl port-forward` on a free loopback port; resolves once kubectl says where it forwards. */
export function portForward(args: string[], env: NodeJS.ProcessEnv): Promise<{ url: string; child: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const child = spawn('kubectl', ['port-forward', '--address', '127.0.0.1', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill();
      reject(new TargetError(`kubectl port-forward ${args.join(' ')} did not start within 15 s: ${out.trim() || 'no output'}`));
    }, 15_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: `http://127.0.0.1:${m[1]}`, child });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new TargetError(`cannot run kubectl (${e.message}); install kubectl or pass --controller URL`));
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new TargetError(`kubectl port-forward ${args.join(' ')} exited (${code}): ${out.trim() || 'no output'}; is Weft installed (kubectl apply -k daemonset/)?`));
    });
  });
}

async function kubernetesTarget(env: NodeJS.ProcessEnv, wantAgents: boolean): Promise<Target> {
  const children: ChildProcess[] = [];
  const close = () => {
    for (const c of children) c.kill();
  };
  try {
    const ctl = await portForward(['-n', 'weft-system', 'svc/weft-controller', `:${PORTS.controllerWeb}`], env);
    children.push(ctl.child);
    const agents: AgentTarget[] = [];
    if (wantAgents) {
      const r = spawnSync('kubectl', ['-n', 'weft-system', 'get', 'pods', '-l', 'app.kubernetes.io/name=weft-agent', '-o', 'jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName}{"\\n"}{end}'], { env, encoding: 'utf8' });
      for (const line of (r.stdout ?? '').split('\n').filter(Boolean)) {
        const [pod, node] = line.split(' ');
        const admin = await portForward(['-n', 'weft-system', `pod/${pod}`, `:${PORTS.admin}`], env);
        children.push(admin.child);
        const metrics = await portForward(['-n', 'weft-system', `pod/${pod}`, `:${PORTS.metrics}`], env);
        children.push(metrics.child);
        agents.push({ node: node ?? pod!, admin: admin.url, metrics: `${metrics.url}/metrics` });
      }
    }
    return { kind: 'kubernetes', controller: ctl.url, agents, prometheus: env.WEFT_PROMETHEUS ?? null, describe: 'Kubernetes (kubectl port-forward)', close };
  } catch (e) {
    close();
    throw e;
  }
}

/**
 * Resolves where the mesh is. `wantAgents`: also reach each agent's admin (sandbox: free; Kubernetes: one
 * port-forward per agent). The caller must call close() (it stops port-forwards).
 */
export async function resolveTarget(flags: TargetFlags, wantAgents = false): Promise<Target> {
  const env = flags.env ?? process.env;
  const explicit = flags.controller ?? env.WEFT_CONTROLLER;
  if (explicit) {
    const st = flags.sandbox || env.WEFT_SANDBOX_ID ? findSandbox(flags) : undefined;
    return { ...(st ? sandboxTarget(st) : { agents: [], prometheus: env.WEFT_PROMETHEUS ?? null }), kind: 'flag', controller: explicit.replace(/\/+$/, ''), describe: `--controller ${explicit}`, close() {} };
  }
  const st = findSandbox(flags);
  if (st) return sandboxTarget(st);
  if (kubeconfigPath(env) && spawnSync('kubectl', ['version', '--client'], { env, stdio: 'ignore' }).status === 0) return kubernetesTarget(env, wantAgents);
  return {
    kind: 'default',
    controller: `http://127.0.0.1:${PORTS.controllerWeb}`,
    agents: [],
    prometheus: env.WEFT_PROMETHEUS ?? null,
    describe: `http://127.0.0.1:${PORTS.controllerWeb} (no sandbox running, no kubeconfig)`,
    close() {},
  };
}

/** What to tell the user when the controller does not answer. */
export function unreachable(t: Target, err: unknown): TargetError {
  const why = (err as { cause?: Error }).cause?.message ?? (err as Error).message;
  const hint =
    t.kind === 'default'
      ? 'start a sandbox (npm run sandbox, or weft sandbox up --detach), point KUBECONFIG at a cluster running Weft, or pass --controller URL'
      : t.kind === 'sandbox'
        ? `the sandbox's controller is not answering; see weft sandbox logs controller${t.describe === 'sandbox dev' ? '' : ` --id ${t.describe.slice(8)}`}`
        : 'check the URL and that the controller runs';
  return new TargetError(`cannot reach the controller at ${t.controller} (${t.describe}): ${why}; ${hint}`);
}

/** GET a JSON document from the controller's API, with the errors above. */
export async function getJson<T>(t: Target, path: string, timeoutMs = 10_000): Promise<T> {
  let res: Response;
  try {
    res = await fetch(t.controller + path, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw unreachable(t, e);
  }
  const body = (await res.json().catch(() => ({}))) as T & { error?: unknown };
  if (!res.ok) {
    const err = body.error as { message?: string } | string | undefined;
    throw new WeftError('WEFT_ERR_CONTROLLER_CALL', `${t.controller}${path} answered ${res.status}: ${typeof err === 'string' ? err : (err?.message ?? 'no reason given')}`);
  }
  return body;
}

/** GET JSON from an agent's admin endpoint. */
export async function getAgentJson<T>(a: AgentTarget, path: string, timeoutMs = 10_000): Promise<T> {
  if (!a.admin) throw new TargetError(`the admin endpoint of the agent on ${a.node} is not reachable from here (a sandbox forwards it; with --controller only the controller is known)`);
  let res: Response;
  try {
    res = await fetch(a.admin + path, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new TargetError(`cannot reach the agent on ${a.node} at ${a.admin}: ${(e as { cause?: Error }).cause?.message ?? (e as Error).message}; is it running? (weft sandbox logs agent/${a.node})`);
  }
  if (!res.ok) throw new WeftError('WEFT_ERR_CONTROLLER_CALL', `agent ${a.node} ${path} answered ${res.status}`);
  return (await res.json()) as T;
}
