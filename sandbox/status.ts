// `weft sandbox status`: the sandbox as operators and scripts see it. The JSON shape is a stable contract
// (docs/sandbox.md): fields may be added, never renamed or removed without a schema bump.
import { readFileSync } from 'node:fs';

import { PORTS } from '../common/ports.js';
import { meshFiles } from './mesh.js';
import { prometheusFiles } from './prometheus.js';
import { readSupervisorStatus, supervisorStatusFile } from './supervisor.js';
import { portKey } from './plan.js';
import { pidAlive, type SandboxState } from './state.js';

export const STATUS_SCHEMA = 1;

export interface ProcessStatus {
  pid: number | null;
  running: boolean;
}

export interface SandboxStatus {
  schema: number;
  id: string;
  phase: string;
  startedAt: string;
  readyAt: string | null;
  /** the `up` process; null once a --detach'ed up has returned */
  upPid: number | null;
  specFile: string;
  runDir: string;
  cgroupRoot: string;
  mesh: { enabled: boolean; reason: string | null };
  underlay: { netns: string; interface: string; cidr: string };
  controller: ProcessStatus & { netns: string; ip: string; grpc: string; web: string | null; log: string | null };
  nodes: {
    name: string;
    netns: string;
    ip: string;
    podCIDR: string;
    bridge: string;
    cgroup: string;
    agent: ProcessStatus & { metrics: string | null; health: string | null; bpffs: string; log: string | null };
  }[];
  pods: {
    namespace: string;
    name: string;
    uid: string;
    node: string;
    netns: string;
    ip: string;
    cgroup: string;
    meshed: boolean;
    serviceAccount: string;
    labels: Record<string, string>;
    running: boolean;
    containers: { name: string; command: string[]; pid: number | null; running: boolean; log: string }[];
  }[];
  services: {
    namespace: string;
    name: string;
    clusterIP: string | null;
    ports: { name: string | null; port: number; targetPort: number | string; protocol: string; appProtocol: string | null }[];
    endpoints: { pod: string; ip: string; node: string }[];
    names: string[];
  }[];
  namespaces: { name: string; meshed: boolean }[];
  forwards: { name: string; address: string; target: string; netns: string }[];
  /** the sandbox's Prometheus, scraping every agent and the controller; null when it does not run */
  prometheus: (ProcessStatus & { url: string | null; log: string }) | null;
}

/** Alive and still ours (in this sandbox's cgroup subtree), so a reused pid does not count. */
function ours(pid: number | undefined, cgroupRoot: string, cgroupMount: string): boolean {
  if (!pid || !pidAlive(pid)) return false;
  try {
    const rel = cgroupRoot.slice(cgroupMount.length);
    return readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').some((l) => l.startsWith('0::') && l.slice(3).startsWith(rel));
  } catch {
    return false;
  }
}

export function sandboxStatus(st: SandboxState): SandboxStatus {
  const plan = st.plan;
  const mount = plan.paths.cgroupMount;
  const alive = (pid: number | undefined): ProcessStatus => ({ pid: pid ?? null, running: ours(pid, plan.cgroupRoot, mount) });
  const fwd = (name: string) => {
    const f = st.forwards.find((x) => x.name === name);
    return f ? `http://127.0.0.1:${f.port}` : null;
  };
  const files = meshFiles(plan);
  return {
    schema: STATUS_SCHEMA,
    id: st.id,
    // a build or teardown whose process died (kill -9, crash) is reported as such: `down` cleans it up
    phase: (st.phase === 'building' || st.phase === 'stopping') && !pidAlive(st.pid) ? 'crashed' : st.phase,
    startedAt: st.startedAt,
    readyAt: st.readyAt ?? null,
    upPid: pidAlive(st.pid) && !st.detached ? st.pid : null,
    specFile: plan.specFile,
    runDir: plan.paths.runDir,
    cgroupRoot: plan.cgroupRoot,
    mesh: { enabled: !st.meshDisabled, reason: st.meshDisabled ?? null },
    underlay: { netns: plan.underlay.netns, interface: plan.underlay.bridge, cidr: plan.underlay.cidr },
    controller: {
      netns: plan.controller.netns,
      ip: plan.controller.ip,
      grpc: `${plan.controller.ip}:${PORTS.controllerGrpc}`,
      ...alive(st.pids.controller),
      web: fwd('controller-web') && `${fwd('controller-web')}/`,
      log: st.controllerDisabled ? null : files.controllerLog,
    },
    nodes: plan.nodes.map((n) => ({
      name: n.name,
      netns: n.netns,
      ip: n.ip,
      podCIDR: n.podCIDR,
      bridge: n.bridge,
      cgroup: n.cgroup,
      // the agent serving now (its supervisor restarts and upgrades it); the supervisor's pid before it wrote its status
      agent: { ...alive(readSupervisorStatus(supervisorStatusFile(plan.paths.runDir, n.name))?.agent ?? st.pids.agents[n.name]), metrics: fwd(`${n.name}-metrics`) && `${fwd(`${n.name}-metrics`)}/metrics`, health: fwd(`${n.name}-health`) && `${fwd(`${n.name}-health`)}/healthz/ready`, bpffs: n.bpffs, log: st.meshDisabled ? null : files.agentLogs[n.name]! },
    })),
    pods: plan.pods.map((p) => {
      const pids = st.pids.pods[`${p.namespace}/${p.name}`] ?? {};
      const containers = p.containers.map((c) => ({ name: c.name, command: c.argv, ...alive(pids[c.name]), log: c.log }));
      return {
        namespace: p.namespace,
        name: p.name,
        uid: p.uid,
        node: p.node,
        netns: p.netns,
        ip: p.ip,
        cgroup: p.cgroup,
        meshed: p.meshed,
        serviceAccount: p.serviceAccount,
        labels: p.labels,
        running: containers.every((c) => c.running),
        containers,
      };
    }),
    services: plan.services.map((s) => ({
      namespace: s.namespace,
      name: s.name,
      clusterIP: s.clusterIP || null,
      ports: s.ports.map((p) => ({ name: p.name ?? null, port: p.port, targetPort: p.targetPort, protocol: p.protocol, appProtocol: p.appProtocol ?? null })),
      endpoints: s.endpoints.filter((e) => s.ports.some((p) => e.ports[portKey(p)] !== undefined)).map((e) => ({ pod: e.pod, ip: e.ip, node: e.node })),
      names: [`${s.name}.${s.namespace}.svc.cluster.local`, `${s.name}.${s.namespace}`],
    })),
    namespaces: plan.namespaces.map((n) => ({ name: n.name, meshed: n.meshed })),
    prometheus: st.pids.prometheus ? { ...alive(st.pids.prometheus), url: fwd('prometheus'), log: prometheusFiles(plan).log } : null,
    forwards: st.forwards.map((f) => ({ name: f.name, address: `127.0.0.1:${f.port}`, target: f.target, netns: f.netns })),
  };
}

/** The human-readable form. */
export function formatStatus(s: SandboxStatus): string {
  const lines: string[] = [];
  const state = (r: boolean) => (r ? 'running' : 'STOPPED');
  lines.push(`sandbox ${s.id}: ${s.phase}, since ${s.startedAt}${s.upPid ? ` (up pid ${s.upPid})` : ''}; spec ${s.specFile}`);
  lines.push(`mesh: ${s.mesh.enabled ? 'on' : `off (${s.mesh.reason})`}`);
  lines.push(`underlay: netns ${s.underlay.netns}, bridge ${s.underlay.interface}, ${s.underlay.cidr}`);
  if (s.controller.pid) lines.push(`controller: ${s.controller.ip} in ${s.controller.netns}, pid ${s.controller.pid} ${state(s.controller.running)}, web ${s.controller.web ?? '-'}`);
  if (s.prometheus) lines.push(`prometheus: pid ${s.prometheus.pid} ${state(s.prometheus.running)}, ${s.prometheus.url ?? '-'}`);
  lines.push('', 'NODE'.padEnd(10) + 'IP'.padEnd(14) + 'PODS'.padEnd(16) + 'NETNS'.padEnd(26) + 'AGENT');
  for (const n of s.nodes) {
    const agent = s.mesh.enabled ? `pid ${n.agent.pid} ${state(n.agent.running)}, metrics ${n.agent.metrics ?? '-'}` : '-';
    lines.push(n.name.padEnd(10) + n.ip.padEnd(14) + n.podCIDR.padEnd(16) + n.netns.padEnd(26) + agent);
  }
  lines.push('', 'POD'.padEnd(40) + 'NODE'.padEnd(10) + 'IP'.padEnd(14) + 'MESH'.padEnd(6) + 'STATE');
  for (const p of s.pods) lines.push(`${p.namespace}/${p.name}`.padEnd(40) + p.node.padEnd(10) + p.ip.padEnd(14) + (p.meshed ? 'yes' : 'no').padEnd(6) + state(p.running));
  lines.push('', 'SERVICE'.padEnd(30) + 'CLUSTER-IP'.padEnd(14) + 'PORTS'.padEnd(24) + 'ENDPOINTS');
  for (const v of s.services) {
    lines.push(`${v.namespace}/${v.name}`.padEnd(30) + (v.clusterIP ?? 'None').padEnd(14) + v.ports.map((p) => `${p.port}/${p.protocol}`).join(',').padEnd(24) + v.endpoints.map((e) => e.ip).join(', '));
  }
  return lines.join('\n') + '\n';
}
