import type { CompiledPolicy } from './policy.js';

// The mesh as the agent sees it: what the controller computes from Kubernetes objects (or local YAML)
// and streams to each node. It is the one contract between controller, agent, proxy and sandbox; the
// controller's wire format (proto/) carries exactly this shape. Plain data, JSON-serialisable.

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface NodeInfo {
  name: string;
  /** address other node proxies reach this node's inbound tunnel (15008) at */
  ip: string;
}

export interface Workload {
  /** metadata.uid of the Pod */
  uid: string;
  namespace: string;
  name: string;
  serviceAccount: string;
  node: string;
  /** pod IPs (v4 and/or v6) */
  ips: string[];
  labels: Record<string, string>;
  /** in a namespace labelled weft.io/mesh=enabled, not host network, not Weft's own */
  meshed: boolean;
  hostNetwork: boolean;
  /** from PeerAuthentication; drives the inbound guard */
  mtlsMode: MtlsMode;
  /** PeerAuthentication portLevelMtls of the workload's own policy: pod (target) port -> mode */
  portMtls?: Record<string, MtlsMode>;
  /** name of the owning Deployment/ReplicaSet-derived workload, for metrics (source_workload) */
  workloadName: string;
  /** access log opt-in (annotation weft.io/access-log on the Pod, else its Namespace): JSON lines */
  accessLog?: 'json';
  /** the Namespace's weft.io/fail-mode: open lets its pods' connections go direct while the node proxy is not serving (absent: closed) */
  failMode?: 'open';
}

export interface ServicePort {
  name?: string;
  port: number;
  targetPort: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  /** Kubernetes appProtocol (http, http2, grpc, tcp, tls, kubernetes.io/h2c ...); overrides sniffing */
  appProtocol?: string;
}

export interface Endpoint {
  ip: string;
  node: string;
  /** uid of the backing pod, if it is one */
  workloadUid?: string;
  ready: boolean;
}

export interface Service {
  namespace: string;
  name: string;
  /** ClusterIPs (VIPs); empty for headless */
  clusterIPs: string[];
  ports: ServicePort[];
  endpoints: Endpoint[];
}

/** Generic Kubernetes-shaped object for the policy/routing kinds; their owners type them further. */
export interface MeshObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  spec?: unknown;
  [k: string]: unknown;
}

export interface MeshConfig {
  /** monotonically increasing; agents ACK/NACK by version */
  version: number;
  trustDomain: string;
  nodes: NodeInfo[];
  workloads: Workload[];
  services: Service[];
  /** compiled AuthorizationPolicy, HTTPRoute/GRPCRoute and TrafficPolicy entries (common/policy.ts);
   * PeerAuthentication is compiled into each workload's mtlsMode */
  policies: CompiledPolicy[];
}

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

export const MESH_NAMESPACE_LABEL = 'weft.io/mesh';
export const MESH_NAMESPACE_ENABLED = 'enabled';
/** Pod or Namespace annotation: `json` turns the proxies' access log on for its pods, `off` turns it off */
export const ACCESS_LOG_ANNOTATION = 'weft.io/access-log';
export const ACCESS_LOG_VALUES = ['json', 'off'] as const;
/** Namespace annotation: what capture does with its pods' connections while the node proxy is not serving */
export const FAIL_MODE_ANNOTATION = 'weft.io/fail-mode';
export const FAIL_MODE_VALUES = ['closed', 'open'] as const;
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
