// `weft sandbox up|status|exec|logs|down`: the command line over up.ts, down.ts and status.ts.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { WeftConfigError } from '../common/errors.js';
import { COMMANDS } from '../cli/registry.js';
import { down } from './down.js';
import { meshFiles } from './mesh.js';
import { SandboxNotFoundError } from './errors.js';
import { spawnIn } from './host/enter.js';
import type { PodPlan } from './plan.js';
import { podEnv, podTarget } from './pods.js';
import { DEFAULT_ID, readState, runDirFor, type SandboxState, validateId } from './state.js';
import { formatStatus, sandboxStatus, type SandboxStatus } from './status.js';
import { prometheusAvailable } from './prometheus.js';
import { idFlag, up } from './up.js';
import { readSupervisorStatus, superviseAgent, supervisorStatusFile } from './supervisor.js';
import { pidAlive } from './state.js';
import { tracingFlags } from '../agent/observe/tracing-flags.js';

/** sandbox/demo.yaml of this installation (dist/sandbox/cli.js -> ../../sandbox/demo.yaml). */
export const DEMO_SPEC = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'sandbox', 'demo.yaml');

const USAGE = `usage: weft sandbox <command> [--id ID]

  up [--nodes N] [-f spec.yaml] [--detach] [--no-mesh] [--no-prometheus] [--ready-timeout SECONDS] [--controllers N]
     [--trace-collector URL [--trace-sampling PERCENT]]
                      build a sandbox (default: 2 nodes, sandbox/demo.yaml) and stay in the
                      foreground until Ctrl-C, which removes it; --detach returns once it is up;
                      the controller and each agent get --ready-timeout (default 60) to become ready;
                      a Prometheus scrapes the mesh unless --no-prometheus (or the package is missing);
                      --controllers N runs N controller replicas sharing the CA (agents get every address
                      and fail over between them); --trace-collector turns the agents' tracing on (an OTLP/HTTP
                      URL the node namespaces reach, e.g. a collector in the controller's namespace:
                      http://10.99.0.2:4318/v1/traces), sampling at --trace-sampling percent (default 1)
  status [--json]     nodes, pods, services, controller and where their pages are forwarded
  exec <ns>/<pod> [-c CONTAINER] -- <cmd...>
                      run a command in a pod's network, mount and UTS namespaces and cgroup
  logs <ns>/<pod> [-c CONTAINER] [-f]
                      a pod's output; \`logs controller\` and \`logs agent/node-1\` for the mesh's own
  restart-agent <node> [--timeout SECONDS] [--wait-drain]
                      upgrade a node's agent in place, as a DaemonSet with maxSurge would: the
                      new agent starts beside the old one, takes over its ports, then the old
                      one drains; --wait-drain returns once the old one has exited
  down                stop and remove everything the sandbox created (also after a crash)

--id ID (or WEFT_SANDBOX_ID) picks the sandbox; the default is "${DEFAULT_ID}".
`;

function sandboxId(v: string | undefined): string {
  return validateId(v ?? process.env.WEFT_SANDBOX_ID ?? DEFAULT_ID);
}

function loadState(id: string): SandboxState {
  const st = readState(runDirFor(id));
  if (!st) throw new SandboxNotFoundError(id, `no sandbox "${id}" is running; start one with \`weft sandbox up${idFlag(id)}\``);
  return st;
}

function findPod(st: SandboxState, ref: string | undefined): PodPlan {
  if (!ref) throw new WeftConfigError('pod', 'name a pod as <namespace>/<pod> (see `weft sandbox status`)');
  const [ns, name] = ref.includes('/') ? ref.split('/', 2) : ['default', ref];
  const pod = st.plan.pods.find((p) => p.namespace === ns && p.name === name);
  if (!pod) {
    const known = st.plan.pods.map((p) => `${p.namespace}/${p.name}`);
    throw new SandboxNotFoundError(ref, `no pod "${ns}/${name}" in sandbox "${st.id}"; pods: ${known.join(', ') || '(none)'}`);
  }
  return pod;
}

/** Why the controller / the agents are not started, if they are not. */
function meshAvailability(noMesh: boolean): { controllerDisabled?: string; meshDisabled?: string } {
  if (noMesh) return { controllerDisabled: 'started with --no-mesh', meshDisabled: 'started with --no-mesh' };
  if (process.env.WEFT_SANDBOX_MESH === 'off') return { controllerDisabled: 'WEFT_SANDBOX_MESH=off', meshDisabled: 'WEFT_SANDBOX_MESH=off' };
  const missing = (c: string) => `this build has no \`weft ${c}\` command yet; pods run without the mesh`;
  return {
    ...(COMMANDS.has('controller') ? {} : { controllerDisabled: missing('controller') }),
    ...(COMMANDS.has('agent') && COMMANDS.has('controller') ? {} : { meshDisabled: missing(COMMANDS.has('agent') ? 'controller' : 'agent') }),
  };
}

async function cmdUp(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      id: { type: 'string' },
      nodes: { type: 'string', default: '2' },
      file: { type: 'string', short: 'f' },
      detach: { type: 'boolean', default: false },
      'no-mesh': { type: 'boolean', default: false },
      'no-prometheus': { type: 'boolean', default: false },
      'ready-timeout': { type: 'string', default: '60' },
      controllers: { type: 'string', default: '1' },
      'trace-collector': { type: 'string' },
      'trace-sampling': { type: 'string' },
    },
  });
  // validated as the agents will (so a bad value fails here, not in every agent)
  const tracing = tracingFlags(values['trace-collector'], values['trace-sampling']);
  const readyTimeout = Number(values['ready-timeout']);
  if (!(readyTimeout > 0)) throw new WeftConfigError('--ready-timeout', `must be a positive number of seconds, got "${values['ready-timeout']}"`);
  const id = sandboxId(values.id);
  if (!/^\d+$/.test(values.nodes!)) throw new WeftConfigError('--nodes', `must be a number, got "${values.nodes}"`);
  if (!/^[1-5]$/.test(values.controllers!)) throw new WeftConfigError('--controllers', `must be a number of controller replicas from 1 to 5, got "${values.controllers}"`);
  const specFile = values.file ?? DEMO_SPEC;
  const availability = meshAvailability(values['no-mesh']!);
  const say = (line: string) => process.stderr.write(`[sandbox ${id}] ${line}\n`);

  // Ctrl-C while building: finish the current step, roll back. Once up: tear down and exit.
  const ac = new AbortController();
  let stopping: Promise<void> | undefined;
  let ready = false;
  const stop = (sig: string) => {
    if (!ready) {
      if (!ac.signal.aborted) say(`${sig}: stopping after the current step, then removing everything`);
      ac.abort();
      return;
    }
    stopping ??= (async () => {
      say(`${sig}: stopping the sandbox`);
      const r = await down(id, { self: process.pid });
      say(`down       removed ${r.removed.processes} processes and ${r.removed.netns} network namespaces`);
      process.exit(0);
    })();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  const t0 = Date.now();
  const st = await up({
    id,
    nodes: Number(values.nodes),
    specFile,
    detached: values.detach!,
    progress: say,
    signal: ac.signal,
    readyTimeoutMs: readyTimeout * 1000,
    prometheus: !values['no-prometheus'] && prometheusAvailable(),
    controllers: Number(values.controllers),
    ...(tracing ? { agentFlags: ['--trace-collector', tracing.collector, '--trace-sampling', String(tracing.sampling * 100)] } : {}),
    ...availability,
  });
  ready = true;
  const status = sandboxStatus(st);
  process.stdout.write(summary(status, (Date.now() - t0) / 1000, values.detach!));
  if (values.detach) {
    process.exit(0); // leave the sandbox's processes running
  }
  // Stay in the foreground until SIGINT/SIGTERM (a pending promise alone does not keep Node running).
  setInterval(() => {}, 1 << 30);
  await new Promise(() => {});
  return 0;
}

function samplePods(s: SandboxStatus): { pod: string; url: string } | undefined {
  const svc = s.services.find((v) => v.clusterIP && v.ports.some((p) => p.appProtocol === 'http' || p.name === 'http' || p.port === 80)) ?? s.services.find((v) => v.clusterIP);
  if (!svc) return undefined;
  const port = svc.ports.find((p) => p.appProtocol === 'http' || p.name === 'http' || p.port === 80) ?? svc.ports[0]!;
  const backends = new Set(s.services.flatMap((v) => v.endpoints.map((e) => e.pod)));
  const from = s.pods.find((p) => p.meshed && !backends.has(`${p.namespace}/${p.name}`)) ?? s.pods.find((p) => !backends.has(`${p.namespace}/${p.name}`)) ?? s.pods[0];
  if (!from) return undefined;
  return { pod: `${from.namespace}/${from.name}`, url: `http://${svc.name}.${svc.namespace}.svc.cluster.local${port.port === 80 ? '' : `:${port.port}`}/` };
}

function summary(s: SandboxStatus, seconds: number, detached: boolean): string {
  const idf = idFlag(s.id);
  const meshedNs = s.namespaces.filter((n) => n.meshed).map((n) => n.name);
  const out = [
    '',
    `sandbox ${s.id} is up in ${seconds.toFixed(1)} s: ${s.nodes.length} nodes, ${s.pods.length} pods, ${s.services.length} services; mesh ${s.mesh.enabled ? `on for namespaces ${meshedNs.join(', ') || '(none)'}` : `off (${s.mesh.reason})`}`,
  ];
  if (s.controller.web) {
    out.push(`  operator page   ${s.controller.web}`);
    const sbf = s.id === DEFAULT_ID ? '' : ` --sandbox ${s.id}`;
    out.push(`  policies        weft apply${sbf} -f FILE`);
    out.push(`  traffic         weft stat${sbf}    (also: weft config dump${sbf} workloads, weft certs, weft version)`);
  }
  if (s.prometheus) out.push(`  prometheus      ${s.prometheus.url}`);
  if (s.mesh.enabled) for (const n of s.nodes) out.push(`  ${n.name} metrics  ${n.agent.metrics}`);
  out.push(`  logs            ${s.runDir}/logs/   (weft sandbox logs${idf} <ns>/<pod>)`);
  const sample = samplePods(s);
  if (sample) out.push(`  try             weft sandbox exec${idf} ${sample.pod} -- curl -s ${sample.url}`);
  out.push(`  status          weft sandbox status${idf} [--json]`);
  out.push(`  packets         nsenter --net=/run/netns/${s.underlay.netns} tshark -i ${s.underlay.interface}`);
  out.push(detached ? `stop it with: weft sandbox down${idf}` : 'Ctrl-C stops the sandbox and removes everything it created.');
  return out.join('\n') + '\n';
}

async function cmdStatus(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { id: { type: 'string' }, json: { type: 'boolean', default: false } } });
  const st = loadState(sandboxId(values.id));
  const s = sandboxStatus(st);
  process.stdout.write(values.json ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s));
  return 0;
}

function splitDashDash(argv: string[]): [string[], string[]] {
  const i = argv.indexOf('--');
  return i < 0 ? [argv, []] : [argv.slice(0, i), argv.slice(i + 1)];
}

async function cmdExec(argv: string[]): Promise<number> {
  const [mine, cmd] = splitDashDash(argv);
  const { values, positionals } = parseArgs({ args: mine, allowPositionals: true, options: { id: { type: 'string' }, container: { type: 'string', short: 'c' } } });
  const st = loadState(sandboxId(values.id));
  const pod = findPod(st, positionals[0]);
  const command = cmd.length ? cmd : positionals.slice(1);
  if (command.length === 0) throw new WeftConfigError('exec', 'give the command after --, e.g. weft sandbox exec demo/client -- curl -s http://web/');
  const c = values.container ? pod.containers.find((x) => x.name === values.container) : pod.containers[0];
  if (!c) throw new SandboxNotFoundError(values.container!, `pod ${pod.namespace}/${pod.name} has no container "${values.container}"; it has ${pod.containers.map((x) => x.name).join(', ')}`);
  if (!existsSync(`/run/netns/${pod.netns}`)) throw new SandboxNotFoundError(pod.netns, `the network namespace of ${pod.namespace}/${pod.name} is gone; the sandbox was taken down or crashed`);
  const child = spawnIn(podTarget(pod, c.cwd), command, { env: podEnv(pod, c.env), stdio: 'inherit', detached: false });
  // Ctrl-C reaches the child through the terminal; don't die before it does.
  const ignore = () => {};
  process.on('SIGINT', ignore);
  return new Promise((resolve) => {
    child.on('error', (e) => {
      process.stderr.write(`weft sandbox exec: ${e.message}\n`);
      resolve(126);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + (signalNumber(signal) ?? 0) : 1)));
  });
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  return (({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 }) as Record<string, number>)[sig];
}

async function cmdLogs(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { id: { type: 'string' }, container: { type: 'string', short: 'c' }, follow: { type: 'boolean', short: 'f', default: false } } });
  const st = loadState(sandboxId(values.id));
  const system = systemLog(st, positionals[0]);
  if (system) return printLogs([{ name: positionals[0]!, log: system }], values.follow!);
  const pod = findPod(st, positionals[0]);
  const containers = values.container ? pod.containers.filter((x) => x.name === values.container) : pod.containers;
  if (containers.length === 0) throw new SandboxNotFoundError(values.container!, `pod ${pod.namespace}/${pod.name} has no container "${values.container}"`);
  return printLogs(containers, values.follow!);
}

/** `controller` and `agent/<node>` name the mesh's own logs (unless a pod has that name). */
function systemLog(st: SandboxState, ref: string | undefined): string | undefined {
  if (!ref || st.plan.pods.some((p) => `${p.namespace}/${p.name}` === ref)) return undefined;
  const files = meshFiles(st.plan);
  if (ref === 'controller') return files.controllerLog;
  const m = /^agent\/(.+)$/.exec(ref);
  return m ? files.agentLogs[m[1]!] : undefined;
}

async function printLogs(sources: { name: string; log: string }[], follow: boolean): Promise<number> {
  if (follow) {
    const child = spawn('tail', ['-n', '+1', '-F', ...sources.map((c) => c.log)], { stdio: 'inherit' });
    return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 0)));
  }
  for (const c of sources) {
    const text = existsSync(c.log) ? readFileSync(c.log, 'utf8') : '';
    if (sources.length > 1) process.stdout.write(text.split('\n').filter(Boolean).map((l) => `[${c.name}] ${l}\n`).join(''));
    else process.stdout.write(text);
  }
  return 0;
}

async function cmdDown(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { id: { type: 'string' } } });
  const id = sandboxId(values.id);
  const r = await down(id);
  process.stderr.write(r.found ? `[sandbox ${id}] removed ${r.removed.processes} processes and ${r.removed.netns} network namespaces\n` : `[sandbox ${id}] nothing to remove\n`);
  return 0;
}

async function cmdRestartAgent(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { id: { type: 'string' }, timeout: { type: 'string', default: '60' }, 'wait-drain': { type: 'boolean', default: false } },
  });
  const st = loadState(sandboxId(values.id));
  const timeoutMs = Number(values.timeout) * 1000;
  if (!(timeoutMs > 0)) throw new WeftConfigError('--timeout', `must be a positive number of seconds, got "${values.timeout}"`);
  const name = positionals[0];
  const node = st.plan.nodes.find((n) => n.name === name);
  if (!node) throw new SandboxNotFoundError(name ?? '(none)', `name a node: ${st.plan.nodes.map((n) => n.name).join(', ')}`);
  if (st.meshDisabled) throw new SandboxNotFoundError(node.name, `sandbox "${st.id}" runs without the mesh (${st.meshDisabled}): there is no agent to restart`);
  const file = supervisorStatusFile(st.plan.paths.runDir, node.name);
  const before = readSupervisorStatus(file);
  if (!before || !pidAlive(before.supervisor)) throw new SandboxNotFoundError(node.name, `the agent supervisor of ${node.name} is not running (status file ${file}); see \`weft sandbox logs agent/${node.name}\``);
  process.kill(before.supervisor, 'SIGHUP');
  const deadline = Date.now() + timeoutMs;
  let now = before;
  while ((now = readSupervisorStatus(file) ?? now).upgrades <= before.upgrades) {
    if (Date.now() > deadline) throw new Error(`the upgrade of ${node.name}'s agent did not finish within ${timeoutMs / 1000} s; see \`weft sandbox logs agent/${node.name}\``);
    await new Promise((r) => setTimeout(r, 100));
  }
  const u = now.lastUpgrade!;
  if (!u.ok) {
    process.stderr.write(`[sandbox ${st.id}] ${node.name}: upgrade failed, the old agent (pid ${u.oldPid}) keeps serving: ${u.error}\n`);
    return 1;
  }
  process.stdout.write(`${node.name}: agent pid ${u.oldPid} -> ${u.newPid} (new agent ready in ${u.readyMs} ms; the old one hands over its listeners and drains)\n`);
  if (values['wait-drain'] && u.oldPid) {
    while (pidAlive(u.oldPid)) {
      if (Date.now() > deadline) throw new Error(`the old agent (pid ${u.oldPid}) still drains after ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    process.stdout.write(`${node.name}: old agent ${u.oldPid} drained and exited\n`);
  }
  return 0;
}

/** Internal: the per-node agent supervisor the sandbox starts (sandbox/supervisor.ts). */
async function cmdSuperviseAgent(argv: string[]): Promise<number> {
  const [mine, agentArgv] = splitDashDash(argv);
  const { values } = parseArgs({ args: mine, options: { status: { type: 'string' } } });
  if (!values.status || agentArgv.length === 0) throw new WeftConfigError('supervise-agent', 'usage: weft sandbox supervise-agent --status FILE -- <agent argv>');
  await superviseAgent({ argv: agentArgv, statusFile: values.status });
  return 0;
}

export async function sandboxCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'up':
      return cmdUp(rest);
    case 'status':
      return cmdStatus(rest);
    case 'exec':
      return cmdExec(rest);
    case 'logs':
      return cmdLogs(rest);
    case 'down':
      return cmdDown(rest);
    case 'restart-agent':
      return cmdRestartAgent(rest);
    case 'supervise-agent':
      return cmdSuperviseAgent(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return sub ? 0 : 2;
    default:
      process.stderr.write(`weft sandbox: unknown command "${sub}"\n\n${USAGE}`);
      return 2;
  }
}
