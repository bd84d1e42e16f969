// Turns a validated spec into a complete, serialisable plan: every namespace, link, address, cgroup, file
// and pod placement the sandbox will create, decided before anything is created. The plan is written to
// the state file first, so `weft sandbox down` can remove all of it even after a crash mid-build.
import { createHash } from 'node:crypto';
import { join } from 'node:path';

import { WeftConfigError } from '../common/errors.js';
import { matches } from './spec/parse.js';
import type { ContainerSpec, NamespaceSpec, PodSpec, SandboxSpec, ServicePortSpec } from './spec/types.js';
import type { KubeObject } from '../controller/sources/types.js';

/** Address plan (design.md, "The sandbox"). */
export const UNDERLAY_CIDR = '10.99.0.0/24';
export const CONTROLLER_IP = '10.99.0.2';
export const SERVICE_CIDR = '10.97.0.0/16';
export const MAX_NODES = 64;
const MAX_PODS_PER_NODE = 250;

export const nodeIp = (k: number): string => `10.99.0.${10 + k}`;
export const podCidr = (k: number): string => `10.98.${k}.0/24`;
export const podGateway = (k: number): string => `10.98.${k}.1`;

export interface PlanPaths {
  /** /run/weft-sandbox/<id> */
  runDir: string;
  /** the cgroup2 mount (from /proc/mounts) */
  cgroupMount: string;
  /** bpffs directory the agents pin under: <bpffs>/weft-sandbox-<id> */
  bpffsDir: string;
}

export interface NodePlan {
  index: number;
  name: string;
  netns: string;
  ip: string;
  podCIDR: string;
  gateway: string;
  /** the bridge for the node's pods, inside the node netns */
  bridge: string;
  /** the node's veth end inside the underlay netns, attached to its bridge */
  underlayPort: string;
  /** cgroup root holding this node's pods; the agent attaches its eBPF here */
  cgroup: string;
  /** cgroup the agent process runs in (outside the pod subtree, so it is never captured) */
  agentCgroup: string;
  bpffs: string;
  stateDir: string;
}

export interface ContainerPlan extends ContainerSpec {
  /** working directory: workingDir, else the spec file's directory */
  cwd: string;
  log: string;
}

export interface PodPlan {
  namespace: string;
  name: string;
  uid: string;
  node: string;
  ip: string;
  netns: string;
  /** veth end in the node netns, on the node bridge */
  hostVeth: string;
  cgroup: string;
  /** bind-mounted mount and UTS namespaces holding the pod's /etc/hosts, /etc/resolv.conf and hostname */
  mntns: string;
  utsns: string;
  hostsFile: string;
  resolvFile: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  serviceAccount: string;
  meshed: boolean;
  owner?: PodSpec['owner'];
  containers: ContainerPlan[];
}

export interface ServiceEndpointPlan {
  pod: string; // namespace/name
  ip: string;
  node: string;
  /** service port name-or-number -> resolved target port on this pod */
  ports: Record<string, number>;
}

export interface ServicePlan {
  namespace: string;
  name: string;
  /** empty string for a headless service */
  clusterIP: string;
  ports: ServicePortSpec[];
  selector?: Record<string, string>;
  endpoints: ServiceEndpointPlan[];
}

export interface Plan {
  id: string;
  specFile: string;
  paths: PlanPaths;
  /** cgroup holding everything the sandbox runs: <mount>/weft-sandbox-<id> */
  cgroupRoot: string;
  /** cgroup for the controller and port-forward helpers */
  systemCgroup: string;
  underlay: { netns: string; bridge: string; cidr: string };
  controller: {
    netns: string;
    ip: string;
    underlayPort: string;
    cgroup: string;
    stateDir: string;
    configDir: string;
    /** controller replicas (default 1); replica k listens on the ports + 100*k, all share stateDir (the CA) */
    replicas?: number;
  };
  nodes: NodePlan[];
  namespaces: NamespaceSpec[];
  serviceAccounts: { namespace: string; name: string }[];
  pods: PodPlan[];
  services: ServicePlan[];
  passthrough: KubeObject[];
}

export interface PlanOptions {
  id: string;
  nodes: number;
  paths: PlanPaths;
  /** directory relative commands and working dirs resolve against (the spec file's directory) */
  specDir: string;
}

export function netnsPrefix(id: string): string {
  return `weft-${id}-`;
}

export function cgroupRootFor(cgroupMount: string, id: string): string {
  return join(cgroupMount, `weft-sandbox-${id}`);
}

/** A stable uid per pod (UUID-shaped, as metadata.uid is): same sandbox id and pod name, same uid. */
export function podUid(id: string, namespace: string, name: string): string {
  const h = createHash('sha256').update(`weft-sandbox/${id}/${namespace}/${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function planSandbox(spec: SandboxSpec, opts: PlanOptions): Plan {
  const { id, paths } = opts;
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > MAX_NODES) {
    throw new WeftConfigError('--nodes', `must be an integer from 1 to ${MAX_NODES}, got ${opts.nodes}`);
  }
  const prefix = netnsPrefix(id);
  const cgroupRoot = cgroupRootFor(paths.cgroupMount, id);
  const systemCgroup = join(cgroupRoot, 'system');
  const nodes: NodePlan[] = [];
  for (let k = 1; k <= opts.nodes; k++) {
    const name = `node-${k}`;
    nodes.push({
      index: k,
      name,
      netns: `${prefix}${name}`,
      ip: nodeIp(k),
      podCIDR: podCidr(k),
      gateway: podGateway(k),
      bridge: 'weft0',
      underlayPort: `u-${name}`.slice(0, 15),
      cgroup: join(cgroupRoot, name),
      agentCgroup: join(systemCgroup, `agent-${name}`),
      bpffs: join(paths.bpffsDir, name),
      stateDir: join(paths.runDir, 'agents', name),
    });
  }
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const nsByName = new Map(spec.namespaces.map((n) => [n.name, n]));

  // Place pods: spec.nodeName wins; the rest go round-robin, so a Deployment's replicas spread out.
  let next = 0;
  const perNode = new Map<string, number>();
  const pods: PodPlan[] = spec.pods.map((p, i) => {
    let node: NodePlan;
    if (p.nodeName) {
      const n = byName.get(p.nodeName);
      if (!n) {
        throw new WeftConfigError(`${p.origin}: spec.nodeName`, `node "${p.nodeName}" does not exist; this sandbox has ${nodes.map((n) => n.name).join(', ')} (use --nodes to add more)`);
      }
      node = n;
    } else {
      node = nodes[next++ % nodes.length]!;
    }
    const count = (perNode.get(node.name) ?? 0) + 1;
    if (count > MAX_PODS_PER_NODE) throw new WeftConfigError(`${p.origin}`, `more than ${MAX_PODS_PER_NODE} pods on ${node.name}; use more nodes`);
    perNode.set(node.name, count);
    const key = `${p.namespace}_${p.name}`;
    return {
      namespace: p.namespace,
      name: p.name,
      uid: podUid(id, p.namespace, p.name),
      node: node.name,
      ip: `10.98.${node.index}.${count + 1}`,
      netns: `${prefix}pod-${p.namespace}-${p.name}`,
      hostVeth: `veth${i + 1}`,
      cgroup: '', // filled below, needs the uid
      mntns: join(paths.runDir, 'ns', `${key}.mnt`),
      utsns: join(paths.runDir, 'ns', `${key}.uts`),
      hostsFile: join(paths.runDir, 'etc', `${key}.hosts`),
      resolvFile: join(paths.runDir, 'etc', `${p.namespace}.resolv.conf`),
      labels: p.labels,
      annotations: p.annotations,
      serviceAccount: p.serviceAccount,
      meshed: nsByName.get(p.namespace)?.meshed ?? false,
      ...(p.owner ? { owner: p.owner } : {}),
      containers: p.containers.map((c) => ({
        ...c,
        cwd: c.workingDir ? (c.workingDir.startsWith('/') ? c.workingDir : join(opts.specDir, c.workingDir)) : opts.specDir,
        log: join(paths.runDir, 'logs', `${key}${p.containers.length > 1 ? `_${c.name}` : ''}.log`),
      })),
    };
  });
  for (const p of pods) p.cgroup = join(byName.get(p.node)!.cgroup, `pod-${p.uid}`);
  for (const p of pods) {
    if (p.netns.length > 200) throw new WeftConfigError(`Pod ${p.namespace}/${p.name}`, 'name is too long for the sandbox (at most ~180 characters)');
  }

  // Service VIPs: a requested clusterIP must lie in 10.97.0.0/16 and be unique; the rest are assigned.
  const taken = new Set<string>();
  for (const s of spec.services) {
    if (!s.clusterIP || s.clusterIP === 'None') continue;
    if (!inServiceCidr(s.clusterIP)) throw new WeftConfigError(`${s.origin}: spec.clusterIP`, `"${s.clusterIP}" is not in the sandbox's service range ${SERVICE_CIDR}`);
    if (taken.has(s.clusterIP)) throw new WeftConfigError(`${s.origin}: spec.clusterIP`, `${s.clusterIP} is already used by another service`);
    taken.add(s.clusterIP);
  }
  let vip = 1;
  const nextVip = () => {
    for (;;) {
      const n = vip++;
      if (n > 0xfffe) throw new WeftConfigError(`${spec.file}`, `more services than fit in ${SERVICE_CIDR}`);
      if ((n & 255) === 0 || (n & 255) === 255) continue;
      const ip = `10.97.${n >> 8}.${n & 255}`;
      if (taken.has(ip)) continue;
      taken.add(ip);
      return ip;
    }
  };
  const services: ServicePlan[] = spec.services.map((s) => {
    const clusterIP = s.clusterIP === 'None' ? '' : (s.clusterIP ?? nextVip());
    const selected = s.selector ? pods.filter((p) => p.namespace === s.namespace && matches(s.selector!, p.labels)) : [];
    const endpoints = selected.map((p) => {
      const ports: Record<string, number> = {};
      for (const sp of s.ports) {
        const t = resolveTargetPort(sp, p.containers);
        if (t !== undefined) ports[portKey(sp)] = t;
      }
      return { pod: `${p.namespace}/${p.name}`, ip: p.ip, node: p.node, ports };
    });
    return { namespace: s.namespace, name: s.name, clusterIP, ports: s.ports, endpoints, ...(s.selector ? { selector: s.selector } : {}) };
  });

  return {
    id,
    specFile: spec.file,
    paths,
    cgroupRoot,
    systemCgroup,
    underlay: { netns: `${prefix}underlay`, bridge: 'weft-ul0', cidr: UNDERLAY_CIDR },
    controller: {
      netns: `${prefix}controller`,
      ip: CONTROLLER_IP,
      underlayPort: 'u-controller',
      cgroup: join(systemCgroup, 'controller'),
      stateDir: join(paths.runDir, 'controller'),
      configDir: join(paths.runDir, 'config'),
    },
    nodes,
    namespaces: spec.namespaces,
    serviceAccounts: spec.serviceAccounts.map((s) => ({ namespace: s.namespace, name: s.name })),
    pods,
    services,
    passthrough: spec.passthrough,
  };
}

/** The key a service port is known by in endpoint port maps: its name, else its number. */
export function portKey(p: ServicePortSpec): string {
  return p.name ?? String(p.port);
}

function resolveTargetPort(sp: ServicePortSpec, containers: ContainerSpec[]): number | undefined {
  if (typeof sp.targetPort === 'number') return sp.targetPort;
  for (const c of containers) for (const cp of c.ports) if (cp.name === sp.targetPort) return cp.containerPort;
  return undefined;
}

function inServiceCidr(ip: string): boolean {
  const m = /^10\.97\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  return !!m && Number(m[1]) <= 255 && Number(m[2]) <= 255 && !(m[1] === '0' && m[2] === '0');
}
