// What the capture maps of one node should hold, computed from the mesh configuration: which pods are
// enrolled (meshed workloads scheduled here whose cgroup exists), with which guard mode, and which
// destinations are captured (every service ClusterIP:port, every meshed pod IP:targetPort).
import type { MeshConfig, MtlsMode, Workload } from '../../common/mesh.js';
import { ipFamily } from '../../native/codec.js';
import type { CgroupResolver } from './cgroup-resolver.js';
import type { InboundPod } from './inbound-capture.js';

export interface MeshDestination {
  ip: string;
  /** 0 = every port of this address */
  port: number;
}

export interface DesiredPod {
  cgroupId: bigint;
  uid: string;
  mode: MtlsMode;
  /** PeerAuthentication portLevelMtls: ports whose mode differs from the pod's */
  ports?: { port: number; mode: MtlsMode }[];
  /** the namespace's weft.io/fail-mode is open */
  failOpen?: boolean;
}

export interface DesiredRedirect {
  pods: DesiredPod[];
  destinations: MeshDestination[];
}

export interface DesiredResult {
  desired: DesiredRedirect;
  /** meshed workloads on this node whose cgroup was not found (not started yet, or a layout mismatch) */
  unresolved: Workload[];
  /** the enrolled pods' cgroups and addresses, for inbound capture (inbound-capture.ts) */
  inbound: InboundPod[];
}

export function desiredFromMesh(config: MeshConfig, nodeName: string, resolver: CgroupResolver): DesiredResult {
  const pods: DesiredPod[] = [];
  const inbound: InboundPod[] = [];
  const unresolved: Workload[] = [];
  const seenCgroups = new Set<bigint>();
  for (const w of config.workloads) {
    if (!w.meshed || w.hostNetwork || w.node !== nodeName) continue;
    const cg = resolver.resolve(w);
    if (!cg) {
      unresolved.push(w);
      continue;
    }
    if (seenCgroups.has(cg.id)) continue;
    seenCgroups.add(cg.id);
    const ports = Object.entries(w.portMtls ?? {})
      .map(([port, mode]) => ({ port: Number(port), mode }))
      .filter((p) => p.mode !== w.mtlsMode)
      .sort((a, b) => a.port - b.port);
    pods.push({ cgroupId: cg.id, uid: w.uid, mode: w.mtlsMode, ...(ports.length ? { ports } : {}), ...(w.failMode === 'open' ? { failOpen: true } : {}) });
    inbound.push({ uid: w.uid, cgroupId: cg.id, cgroupPath: cg.path, ips: w.ips.filter((ip) => ipFamily(ip)) });
  }

  const meshedIps = new Set<string>();
  const meshedUids = new Set<string>();
  for (const w of config.workloads) {
    if (!w.meshed || w.hostNetwork) continue;
    meshedUids.add(w.uid);
    for (const ip of w.ips) meshedIps.add(ip);
  }

  const dests = new Map<string, MeshDestination>();
  const add = (ip: string, port: number) => {
    if (!ipFamily(ip) || !Number.isInteger(port) || port < 1 || port > 65535) return;
    dests.set(`${ip}|${port}`, { ip, port });
  };
  for (const s of config.services) {
    for (const p of s.ports) {
      if (p.protocol !== 'TCP') continue;
      for (const vip of s.clusterIPs) add(vip, p.port);
      for (const e of s.endpoints) {
        const meshed = (e.workloadUid !== undefined && meshedUids.has(e.workloadUid)) || meshedIps.has(e.ip);
        if (meshed) add(e.ip, p.targetPort);
      }
    }
  }
  return { desired: { pods, destinations: [...dests.values()] }, unresolved, inbound };
}
