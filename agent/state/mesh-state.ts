// The agent's indexed view of the MeshConfig the controller streams: services by VIP:port, workloads by IP,
// by uid and by the kernel's cgroup id, nodes by name. Rebuilt whole on each config version (configs are
// small next to the per-connection lookups they serve), so a lookup never sees a half-applied version.
import type { Endpoint, MeshConfig, NodeInfo, Service, ServicePort, Workload } from '../../common/mesh.js';
import { spiffeId } from '../../common/mesh.js';

/** Maps a socket's cgroup v2 id to the uid of the pod it belongs to; supplied by the redirect manager. */
export type CgroupResolver = (cgroupId: bigint) => string | undefined;

export interface ServiceMatch {
  service: Service;
  port: ServicePort;
}

interface Indexes {
  config: MeshConfig;
  servicesByVip: Map<string, ServiceMatch>;
  workloadsByIp: Map<string, Workload>;
  workloadsByUid: Map<string, Workload>;
  nodesByName: Map<string, NodeInfo>;
  /** ready endpoints per service, resolved once per version */
  readyEndpoints: Map<Service, Endpoint[]>;
  /** "ip|port" of every endpoint port of a TCP service port: what outbound capture takes to the proxy */
  endpointPorts: Set<string>;
}

const EMPTY: MeshConfig = { version: 0, trustDomain: 'cluster.local', nodes: [], workloads: [], services: [], policies: [] };

export function vipKey(ip: string, port: number): string {
  return `${ip}:${port}`;
}

export class MeshState {
  private idx: Indexes = build(EMPTY);
  private cgroupResolver: CgroupResolver = () => undefined;
  private readonly listeners = new Set<(cfg: MeshConfig) => void>();

  constructor(readonly nodeName: string) {}

  update(config: MeshConfig): void {
    this.idx = build(config);
    for (const l of this.listeners) l(config);
  }

  onUpdate(listener: (cfg: MeshConfig) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  setCgroupResolver(r: CgroupResolver): void {
    this.cgroupResolver = r;
  }

  get config(): MeshConfig {
    return this.idx.config;
  }

  get version(): number {
    return this.idx.config.version;
  }

  get trustDomain(): string {
    return this.idx.config.trustDomain;
  }

  serviceByVip(ip: string, port: number): ServiceMatch | undefined {
    return this.idx.servicesByVip.get(vipKey(ip, port));
  }

  workloadByIp(ip: string): Workload | undefined {
    return this.idx.workloadsByIp.get(ip);
  }

  /** Whether ip:port is a Service's endpoint port: a meshed pod's connection there is captured, via the Service or directly. */
  isEndpointPort(ip: string, port: number): boolean {
    return this.idx.endpointPorts.has(`${ip}|${port}`);
  }

  workloadByUid(uid: string): Workload | undefined {
    return this.idx.workloadsByUid.get(uid);
  }

  /** The source pod of a captured connection, as the kernel saw it (not from its spoofable source IP). */
  workloadByCgroup(cgroupId: bigint): Workload | undefined {
    const uid = this.cgroupResolver(cgroupId);
    return uid === undefined ? undefined : this.idx.workloadsByUid.get(uid);
  }

  node(name: string): NodeInfo | undefined {
    return this.idx.nodesByName.get(name);
  }

  /** Workloads scheduled on this node: the identities this node's proxy may present. */
  localWorkloads(): Workload[] {
    return this.idx.config.workloads.filter((w) => w.node === this.nodeName);
  }

  identityOf(w: Workload): string {
    return spiffeId(this.idx.config.trustDomain, w.namespace, w.serviceAccount);
  }
}

function build(config: MeshConfig): Indexes {
  const servicesByVip = new Map<string, ServiceMatch>();
  const readyEndpoints = new Map<Service, Endpoint[]>();
  const endpointPorts = new Set<string>();
  for (const service of config.services) {
    readyEndpoints.set(service, service.endpoints.filter((e) => e.ready));
    for (const port of service.ports) if (port.protocol === 'TCP') for (const e of service.endpoints) endpointPorts.add(`${e.ip}|${port.targetPort}`);
    for (const ip of service.clusterIPs) {
      for (const port of service.ports) if (port.protocol === 'TCP') servicesByVip.set(vipKey(ip, port.port), { service, port });
    }
  }
  const workloadsByIp = new Map<string, Workload>();
  const workloadsByUid = new Map<string, Workload>();
  for (const w of config.workloads) {
    workloadsByUid.set(w.uid, w);
    if (!w.hostNetwork) for (const ip of w.ips) workloadsByIp.set(ip, w);
  }
  const nodesByName = new Map(config.nodes.map((n) => [n.name, n] as const));
  return { config, servicesByVip, workloadsByIp, workloadsByUid, nodesByName, readyEndpoints, endpointPorts };
}
