// Builds a sandbox step by step: spec and plan first (all validation, nothing created), then the network,
// the pods' namespaces and cgroups, the service rules, the controller and agents, the pods' programs and
// the port-forwards. Each step reports progress; when one fails, everything built so far is torn down and
// the error names the step.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { WeftConfigError } from '../common/errors.js';
import { PORTS } from '../common/ports.js';
import { ensureBpffs } from '../native/preflight.js';
import { bpffsDirFor, down, sandboxNetns } from './down.js';
import { SandboxExistsError, SandboxHostError, SandboxStepError } from './errors.js';
import { type ForwardSpec, startForward } from './forward.js';
import { PROMETHEUS_PORT, prometheusFiles, startPrometheus } from './prometheus.js';
import { findCgroup2Mount, makeCgroup } from './host/cgroup.js';
import { parallel, run } from './host/run.js';
import { writeConfigDir } from './kube.js';
import { meshFiles, replicaPort, startAgent, startController, waitHealthy, waitReady, writeTokens } from './mesh.js';
import { addNetns, buildNode, buildPodLinks, buildUnderlay } from './network.js';
import { type Plan, planSandbox } from './plan.js';
import { createPodNamespaces, lastLogLine, makeNamespaceDir, startContainer } from './pods.js';
import { applyServiceRules, serviceRules, writeNameFiles } from './services.js';
import { parseSpec } from './spec/parse.js';
import { validateForController } from './validate.js';
import { pidAlive, readState, RUN_BASE, runDirFor, type SandboxState, writeState } from './state.js';

export interface UpOptions {
  id: string;
  nodes: number;
  specFile: string;
  detached: boolean;
  /** undefined: run the controller and agents; a string: why the mesh is off */
  meshDisabled?: string;
  /** a string: why the controller is not started */
  controllerDisabled?: string;
  progress: (line: string) => void;
  runBase?: string;
  /** how long the controller and each agent get to become ready */
  readyTimeoutMs?: number;
  /** Ctrl-C during the build: stop after the current step and roll back */
  signal?: AbortSignal;
  /** run the sandbox's Prometheus (Debian's package) next to the controller */
  prometheus?: boolean;
  /** controller replicas (default 1): agents get all their addresses and fail over between them */
  controllers?: number;
  /** more `weft agent` flags for every agent (tracing: --trace-collector, --trace-sampling) */
  agentFlags?: string[];
  /** more `weft controller` flags for every replica (the soak bench: --cert-ttl) */
  controllerFlags?: string[];
}

const REQUIRED_PROGRAMS = ['ip', 'nsenter', 'unshare', 'mount', 'umount', 'iptables-restore', 'socat', 'sh'];

async function preflight(): Promise<string> {
  if (process.platform !== 'linux') throw new SandboxHostError('the sandbox needs Linux (network namespaces, cgroup v2, eBPF)');
  if (process.getuid?.() !== 0) throw new SandboxHostError('the sandbox needs root (it creates network namespaces, cgroups and eBPF programs); run it with sudo');
  const missing: string[] = [];
  for (const p of REQUIRED_PROGRAMS) {
    const r = await run('sh', ['-c', `command -v ${p}`], { allowFail: true });
    if (r.code !== 0) missing.push(p);
  }
  if (missing.length) throw new SandboxHostError(`missing programs: ${missing.join(', ')}; run \`node scripts/prepare.mjs\` (it installs them) or apt-get install iproute2 util-linux iptables socat`);
  return findCgroup2Mount();
}

/** Parse, validate and plan: throws WeftConfigError before anything exists on the machine. */
export function loadPlan(opts: { id: string; nodes: number; specFile: string; cgroupMount: string; runBase?: string }): Plan {
  const file = resolve(opts.specFile);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new WeftConfigError(opts.specFile, `cannot read the spec file: ${(e as Error).message}`);
  }
  const spec = parseSpec(text, opts.specFile);
  const plan = planSandbox(spec, {
    id: opts.id,
    nodes: opts.nodes,
    specDir: dirname(file),
    paths: { runDir: runDirFor(opts.id, opts.runBase ?? RUN_BASE), cgroupMount: opts.cgroupMount, bpffsDir: bpffsDirFor(opts.id) },
  });
  validateForController(plan);
  return plan;
}

function refuseExisting(id: string, runDir: string): void {
  const st = readState(runDir);
  if (st && pidAlive(st.pid) && st.phase !== 'failed') {
    throw new SandboxExistsError(id, `sandbox "${id}" is already running (up since ${st.startedAt}, pid ${st.pid}${st.detached ? ', detached' : ''}); see \`weft sandbox status${idFlag(id)}\`, stop it with \`weft sandbox down${idFlag(id)}\`, or start another with --id NAME`);
  }
  if (st || existsSync(runDir) || sandboxNetns(id).length > 0) {
    throw new SandboxExistsError(id, `sandbox "${id}" exists${st ? ` (since ${st.startedAt}, ${st.detached ? 'detached' : `its up process ${st.pid} is gone`})` : ' (left behind by a crash)'}; run \`weft sandbox down${idFlag(id)}\` first, or use --id NAME for another sandbox`);
  }
}

export function idFlag(id: string): string {
  return id === 'dev' ? '' : ` --id ${id}`;
}

export async function up(opts: UpOptions): Promise<SandboxState> {
  const say = opts.progress;
  const cgroupMount = await preflight();
  const plan = loadPlan({ ...opts, cgroupMount });
  if (opts.controllers && opts.controllers > 1) plan.controller.replicas = opts.controllers;
  const runDir = plan.paths.runDir;
  refuseExisting(opts.id, runDir);
  say(`building   from ${plan.specFile}: ${plan.nodes.length} nodes, ${plan.pods.length} pods, ${plan.services.length} services`);

  mkdirSync(dirname(runDir), { recursive: true });
  try {
    mkdirSync(runDir); // exclusive: a concurrent `up` with the same id loses here
  } catch {
    throw new SandboxExistsError(opts.id, `sandbox "${opts.id}" is being created by another process (${runDir} exists)`);
  }
  const state: SandboxState = {
    schema: 1,
    id: opts.id,
    phase: 'building',
    pid: process.pid,
    detached: opts.detached,
    startedAt: new Date().toISOString(),
    ...(opts.meshDisabled ? { meshDisabled: opts.meshDisabled } : {}),
    ...(opts.controllerDisabled ? { controllerDisabled: opts.controllerDisabled } : {}),
    plan,
    pids: { agents: {}, pods: {} },
    forwards: [],
  };
  const save = () => writeState(runDir, state);
  save();

  let current = 'prepare';
  const step = async <T>(name: string, what: string, fn: () => Promise<T>): Promise<T> => {
    current = name;
    if (opts.signal?.aborted) throw new Error('interrupted');
    const t0 = Date.now();
    const out = await fn();
    say(`${name.padEnd(10)} ${what} (${Date.now() - t0} ms)`);
    return out;
  };

  try {
    const conc = 8;
    await step('network', `underlay ${plan.underlay.cidr}, ${plan.nodes.length} nodes, controller ${plan.controller.ip}, ${plan.pods.length} pod namespaces`, async () => {
      await addNetns([plan.underlay.netns, plan.controller.netns, ...plan.nodes.map((n) => n.netns), ...plan.pods.map((p) => p.netns)]);
      await buildUnderlay(plan);
      await parallel(plan.nodes, conc, (n) => buildNode(plan, n));
      await parallel(plan.nodes, conc, (n) => buildPodLinks(n, plan.pods.filter((p) => p.node === n.name), conc));
    });

    await step('pods', `cgroups under ${plan.cgroupRoot}, /etc/hosts and resolv.conf for ${plan.pods.length} pods`, async () => {
      for (const dir of [plan.systemCgroup, ...plan.nodes.map((n) => n.cgroup)]) makeCgroup(dir);
      mkdirSync(`${runDir}/etc`, { recursive: true });
      await makeNamespaceDir(`${runDir}/ns`);
      for (const p of plan.pods) writeNameFiles(plan, p);
      await parallel(plan.pods, conc, createPodNamespaces);
    });

    await step('services', `${plan.services.length} services (ClusterIPs in 10.97.0.0/16) in every node's netns`, async () => {
      const rules = serviceRules(plan);
      await parallel(plan.nodes, conc, (n) => applyServiceRules(n, rules));
    });

    const files = meshFiles(plan);
    const timeout = opts.readyTimeoutMs ?? 60_000;
    const fwdDir = `${runDir}/fwd`;
    mkdirSync(fwdDir, { recursive: true });
    const forward = async (spec: ForwardSpec) => {
      const f = await startForward(spec, fwdDir, plan.systemCgroup);
      state.forwards.push(f);
      save();
      return f;
    };
    if (!opts.controllerDisabled) {
      await step('controller', `weft controller at ${plan.controller.ip}:${PORTS.controllerGrpc} (netns ${plan.controller.netns}), web page forwarded to 127.0.0.1`, async () => {
        writeConfigDir(plan.controller.configDir, plan);
        writeTokens(plan, files);
        if (opts.prometheus && !opts.meshDisabled) {
          state.pids.prometheus = startPrometheus(plan);
          save();
        }
        state.pids.controller = startController(plan, files, state.pids.prometheus ? `http://127.0.0.1:${PROMETHEUS_PORT}` : undefined, 0, opts.controllerFlags);
        save();
        await waitReady('the controller', state.pids.controller, [PORTS.controllerGrpc, PORTS.controllerWeb], [files.ca], files.controllerLog, timeout);
        // more replicas once the first has created the CA root they share
        for (let k = 1; k < (plan.controller.replicas ?? 1); k++) {
          const pid = startController(plan, files, state.pids.prometheus ? `http://127.0.0.1:${PROMETHEUS_PORT}` : undefined, k, opts.controllerFlags);
          (state.pids.controllerReplicas ??= []).push(pid);
          save();
          await waitReady(`controller replica ${k}`, pid, [replicaPort(PORTS.controllerGrpc, k), replicaPort(PORTS.controllerWeb, k)], [], files.controllerLog.replace(/\.log$/, `-${k}.log`), timeout);
        }
        // to the controller's loopback, so its admin write API (loopback-only without a token) works through it
        await forward({ name: 'controller-web', netns: plan.controller.netns, target: `127.0.0.1:${PORTS.controllerWeb}` });
        if (state.pids.prometheus) {
          await waitReady('Prometheus', state.pids.prometheus, [PROMETHEUS_PORT], [], prometheusFiles(plan).log, timeout);
          await forward({ name: 'prometheus', netns: plan.controller.netns, target: `127.0.0.1:${PROMETHEUS_PORT}` });
        }
      });
    } else {
      say(`controller off: ${opts.controllerDisabled}`);
    }
    if (!opts.meshDisabled) {
      await step('agents', `weft agent on ${plan.nodes.map((n) => n.name).join(', ')} ready (config in force, eBPF attached at each node's cgroup)`, async () => {
        // the preflight's mount: it marks a bpffs it mounted, so `down` unmounts it again once nothing is pinned
        ensureBpffs(plan.paths.bpffsDir);
        for (const n of plan.nodes) state.pids.agents[n.name] = startAgent(plan, n, files, opts.agentFlags);
        save();
        await parallel(plan.nodes, conc, async (n) => {
          const pid = state.pids.agents[n.name]!;
          const log = files.agentLogs[n.name]!;
          await waitReady(`the agent on ${n.name}`, pid, [PORTS.metrics, PORTS.health], [], log, timeout);
          await forward({ name: `${n.name}-metrics`, netns: n.netns, target: `${n.ip}:${PORTS.metrics}` });
          // the agent's admin is loopback-only in its netns; `weft config dump`, `weft certs`, `weft version` use this
          await forward({ name: `${n.name}-admin`, netns: n.netns, target: `127.0.0.1:${PORTS.admin}` });
          const health = await forward({ name: `${n.name}-health`, netns: n.netns, target: `${n.ip}:${PORTS.health}` });
          await waitHealthy(`the agent on ${n.name}`, pid, `http://127.0.0.1:${health.port}/healthz/ready`, log, timeout);
        });
      });
    } else {
      say(`mesh       off: ${opts.meshDisabled}`);
    }

    await step('workloads', `${plan.pods.reduce((a, p) => a + p.containers.length, 0)} containers started`, async () => {
      for (const p of plan.pods) {
        const pids: Record<string, number> = {};
        for (const c of p.containers) pids[c.name] = startContainer(p, c);
        state.pids.pods[`${p.namespace}/${p.name}`] = pids;
      }
      save();
    });

    if (opts.signal?.aborted) throw new Error('interrupted');
    // Containers that died at once (a typo in a command) are reported, as kubectl would show CrashLoopBackOff.
    await sleep(200);
    for (const p of plan.pods) {
      for (const c of p.containers) {
        if (!pidAlive(state.pids.pods[`${p.namespace}/${p.name}`]?.[c.name])) say(`warning    pod ${p.namespace}/${p.name} container ${c.name} exited right after start: ${lastLogLine(c) || 'no output'} (log: ${c.log})`);
      }
    }
    state.phase = 'running';
    state.readyAt = new Date().toISOString();
    save();
    return state;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    say(`failed     ${current}: ${why}`);
    say('rollback   removing what was created');
    try {
      await down(opts.id, { ...(opts.runBase ? { runBase: opts.runBase } : {}), self: process.pid });
    } catch (e) {
      say(`rollback   incomplete: ${(e as Error).message}; run \`weft sandbox down${idFlag(opts.id)}\``);
    }
    throw new SandboxStepError(current, why, { cause: err });
  }
}
