// The mesh's own processes: the controller in its netns on the underlay, and one agent per node netns,
// each the way its Kubernetes counterpart runs (controller Deployment; agent as a hostNetwork DaemonSet
// pod). They run `weft controller` / `weft agent` from this same installation, in the sandbox's system
// cgroup (never under a node's pod subtree, so the agents' own sockets are never captured).
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import { PORTS } from '../common/ports.js';
import { DEFAULT_TRUST_DOMAIN } from '../common/mesh.js';
import { makeCgroup } from './host/cgroup.js';
import { spawnIn } from './host/enter.js';
import type { NodePlan, Plan } from './plan.js';
import { pidAlive } from './state.js';
import { readSupervisorStatus, supervisorStatusFile } from './supervisor.js';

/** bin/weft.js of this installation (dist/sandbox/mesh.js -> ../../bin/weft.js). */
export const WEFT_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'weft.js');

export interface MeshFiles {
  tokens: string;
  /** per node: the file holding its bootstrap token */
  tokenFiles: Record<string, string>;
  /** the controller's CA certificate, which agents trust */
  ca: string;
  controllerLog: string;
  agentLogs: Record<string, string>;
}

export function meshFiles(plan: Plan): MeshFiles {
  const dir = join(plan.paths.runDir, 'secrets');
  return {
    tokens: join(dir, 'bootstrap-tokens.json'),
    tokenFiles: Object.fromEntries(plan.nodes.map((n) => [n.name, join(dir, `${n.name}.token`)])),
    ca: join(plan.controller.stateDir, 'trust-bundle.pem'),
    controllerLog: join(plan.paths.runDir, 'logs', 'controller.log'),
    agentLogs: Object.fromEntries(plan.nodes.map((n) => [n.name, join(plan.paths.runDir, 'logs', `agent-${n.name}.log`)])),
  };
}

/** One random bootstrap token per node: the controller's token file, and one file per agent. */
export function writeTokens(plan: Plan, files: MeshFiles): void {
  mkdirSync(dirname(files.tokens), { recursive: true, mode: 0o700 });
  const tokens: Record<string, string> = {};
  for (const n of plan.nodes) {
    tokens[n.name] = randomBytes(24).toString('base64url');
    writeFileSync(files.tokenFiles[n.name]!, tokens[n.name]! + '\n', { mode: 0o600 });
  }
  writeFileSync(files.tokens, JSON.stringify(tokens, null, 2) + '\n', { mode: 0o600 });
}

function launch(cgroup: string, netns: string, argv: string[], log: string): number {
  makeCgroup(cgroup);
  mkdirSync(dirname(log), { recursive: true });
  const fd = openSync(log, 'a');
  try {
    const child = spawnIn({ cgroup, netns }, argv, { env: { ...process.env, WEFT_SANDBOX: '1' }, stdio: ['ignore', fd, fd], detached: true });
    child.on('error', () => {});
    child.unref();
    return child.pid ?? -1;
  } finally {
    closeSync(fd);
  }
}

/** replica k of the controller listens on the usual ports + 100*k (same netns and address) */
export const replicaPort = (port: number, replica: number) => port + 100 * replica;

/** the controller address(es) agents are given: IP:PORT, or IP:PORT,IP:PORT,... with replicas */
export function controllerAddresses(plan: Plan): string {
  const n = plan.controller.replicas ?? 1;
  return Array.from({ length: n }, (_, k) => `${plan.controller.ip}:${replicaPort(PORTS.controllerGrpc, k)}`).join(',');
}

export function controllerArgv(plan: Plan, files: MeshFiles, prometheusUrl?: string, replica = 0, extra: readonly string[] = []): string[] {
  const c = plan.controller;
  return [
    process.execPath, WEFT_BIN, 'controller',
    '--config-dir', c.configDir,
    // replicas share the state directory: one CA root, a rotation on one is adopted by the others
    '--state-dir', c.stateDir,
    '--grpc-listen', `${c.ip}:${replicaPort(PORTS.controllerGrpc, replica)}`,
    // all of the controller's netns (its underlay address and loopback, where the port-forward arrives)
    '--web-listen', `0.0.0.0:${replicaPort(PORTS.controllerWeb, replica)}`,
    '--bootstrap-tokens', files.tokens,
    '--trust-domain', DEFAULT_TRUST_DOMAIN,
    // golden metrics for weft stat and the page: from the sandbox's Prometheus, else scraped from the agents
    '--scrape-agents',
    ...(prometheusUrl ? ['--prometheus', prometheusUrl] : []),
    ...extra,
  ];
}

export function agentArgv(plan: Plan, node: NodePlan, files: MeshFiles, extra: readonly string[] = []): string[] {
  return [
    process.execPath, WEFT_BIN, 'agent',
    '--node', node.name,
    '--node-ip', node.ip,
    '--controller', controllerAddresses(plan),
    '--controller-ca', files.ca,
    '--token-file', files.tokenFiles[node.name]!,
    '--cgroup-root', node.cgroup,
    '--cgroup-layout', 'sandbox',
    '--bpffs', node.bpffs,
    '--state-dir', node.stateDir,
    '--outbound-ip', node.ip,
    // pods see their callers' addresses (policy routing in this node's netns, which Weft created)
    '--transparent-source',
    // long-lived streams through an agent being restarted last this long (the DaemonSet's grace period)
    '--drain-timeout', '60',
    ...extra,
  ];
}

export function startController(plan: Plan, files: MeshFiles, prometheusUrl?: string, replica = 0, extra: readonly string[] = []): number {
  mkdirSync(plan.controller.stateDir, { recursive: true });
  const log = replica === 0 ? files.controllerLog : files.controllerLog.replace(/\.log$/, `-${replica}.log`);
  return launch(plan.controller.cgroup, plan.controller.netns, controllerArgv(plan, files, prometheusUrl, replica, extra), log);
}

/**
 * Starts the node's agent under its supervisor (sandbox/supervisor.ts: restarts an agent that exits,
 * upgrades it in place on `weft sandbox restart-agent`). Returns the supervisor's pid; the agent's is in
 * the supervisor's status file (agentPidOf).
 */
export function startAgent(plan: Plan, node: NodePlan, files: MeshFiles, extra: readonly string[] = []): number {
  mkdirSync(node.stateDir, { recursive: true });
  mkdirSync(node.bpffs, { recursive: true });
  const argv = [process.execPath, WEFT_BIN, 'sandbox', 'supervise-agent', '--status', supervisorStatusFile(plan.paths.runDir, node.name), '--', ...agentArgv(plan, node, files, extra)];
  return launch(node.agentCgroup, node.netns, argv, files.agentLogs[node.name]!);
}

/** The pid of the agent serving `node` now (not its supervisor's), if it runs. */
export function agentPidOf(plan: Plan, node: string): number | undefined {
  return readSupervisorStatus(supervisorStatusFile(plan.paths.runDir, node))?.agent;
}

/** Listening TCP ports of the netns `pid` lives in, read from /proc (no connection into the sandbox). */
export function listeningPorts(pid: number): Set<number> {
  const out = new Set<number>();
  for (const f of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${f}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A' && cols[1]) out.add(parseInt(cols[1].split(':')[1]!, 16));
    }
  }
  return out;
}

/**
 * Waits until `pid` listens on all `ports` (and `files` exist), failing early when the process exits.
 * `what` and `log` make the error actionable.
 */
export async function waitReady(what: string, pid: number, ports: number[], files: string[], log: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!pidAlive(pid)) throw new Error(`${what} exited during startup; last lines of ${log}:\n${tail(log, 8)}`);
    const listening = listeningPorts(pid);
    if (ports.every((p) => listening.has(p)) && files.every((f) => existsSync(f))) return;
    if (Date.now() > deadline) {
      const missing = [...ports.filter((p) => !listening.has(p)).map((p) => `port ${p}`), ...files.filter((f) => !existsSync(f))];
      throw new Error(`${what} was not ready after ${timeoutMs / 1000}s (waiting for ${missing.join(', ')}); see ${log}:\n${tail(log, 8)}`);
    }
    await sleep(50);
  }
}

/**
 * Polls a readiness URL (through a loopback port-forward) until it answers 200; a 503's body says which
 * check fails (the agent names them: proxy, config, capture), and that goes into the timeout message.
 */
export async function waitHealthy(what: string, pid: number, url: string, log: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    if (!pidAlive(pid)) throw new Error(`${what} exited during startup; last lines of ${log}:\n${tail(log, 8)}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      const body = await res.text();
      if (res.status === 200) return;
      last = `${res.status} ${body.trim()}`;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what} was not ready after ${timeoutMs / 1000}s (${url}: ${last}); see ${log}:\n${tail(log, 8)}`);
    await sleep(200);
  }
}

export function tail(file: string, n: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '(no log)';
  }
}
