// Where a picked endpoint is: same-node endpoints are delivered locally, meshed endpoints on other nodes go
// through the tunnel, anything else (a pod outside the mesh) is reached directly in plaintext, as it would
// be without the mesh. Also the metric label sets, built once per (source, destination) and shared.
import type { SourceInfo } from '../pipeline/context.js';
import type { EndpointRef, UpstreamLimits } from '../pipeline/stages.js';
import type { NodeInfo, Workload } from '../../common/mesh.js';
import type { MeshState, ServiceMatch } from '../state/mesh-state.js';
import type { PeerLabels, SecurityPolicy } from '../metrics/istio.js';
import { peerLabels } from '../metrics/peer-labels.js';

export type RouteKind = 'local' | 'tunnel' | 'passthrough';

export interface Route {
  kind: RouteKind;
  ip: string;
  port: number;
  /** the destination pod, when it is a meshed workload */
  workload: Workload | undefined;
  /** tunnel only: the node the pod runs on and the identity its proxy must present */
  node: NodeInfo | undefined;
  destinationId: string | undefined;
  labels: PeerLabels;
  /** local only: the labels this node's destination half reports with (reporter="destination") */
  destinationLabels?: PeerLabels;
  /** the Service's connection settings (TrafficPolicy connectionPool), when it sets any */
  limits?: UpstreamLimits;
}

const UNKNOWN = 'unknown';

/** Enough of a workload to label metrics with (a peer's baggage carries no more). */
export type LabelWorkload = Pick<Workload, 'uid' | 'workloadName' | 'namespace'> & Partial<Workload>;

/** The destination_service label: the Service's cluster-local host name, as Istio reports it. */
export function serviceHost(m: ServiceMatch, trustDomain: string): string {
  return `${m.service.name}.${m.service.namespace}.svc.${trustDomain}`;
}

export class DestinationResolver {
  private readonly labelCache = new Map<string, PeerLabels>();

  constructor(private readonly state: MeshState) {
    state.onUpdate(() => this.labelCache.clear());
  }

  /** Where one picked endpoint is: this node, another meshed node (tunnel), or outside the mesh. */
  routeTo(ep: EndpointRef, source: SourceInfo, service: ServiceMatch | undefined): Route {
    const state = this.state;
    const w = ep.workload;
    const nodeName = ep.nodeName;
    let kind: RouteKind = 'passthrough';
    let node: NodeInfo | undefined;
    if (nodeName === state.nodeName) kind = 'local';
    else if (w?.meshed && nodeName && (node = state.node(nodeName))) kind = 'tunnel';
    const destinationId = w ? state.identityOf(w) : undefined;
    const security: SecurityPolicy = kind === 'tunnel' ? 'mutual_tls' : 'none';
    const labels = this.labels('source', source.workload, w, service, security);
    if (kind !== 'local' || !w) return { kind, ip: ep.ip, port: ep.port, workload: w, node, destinationId, labels };
    // Same node, this proxy is also the destination's: it reports both sides, as two sidecars would.
    return { kind, ip: ep.ip, port: ep.port, workload: w, node, destinationId, labels, destinationLabels: this.labels('destination', source.workload, w, service, security, source.principal) };
  }

  /** Peer label sets are shared objects, so the metrics layer can cache its children by identity. */
  labels(reporter: 'source' | 'destination', src: LabelWorkload | undefined, dst: Workload | undefined, service: ServiceMatch | string | undefined, security: SecurityPolicy, srcPrincipal?: string): PeerLabels {
    const svc = typeof service === 'string' ? service : service ? serviceHost(service, this.state.trustDomain) : undefined;
    const principal = srcPrincipal ?? (src && 'serviceAccount' in src ? this.state.identityOf(src as Workload) : UNKNOWN);
    // a full Workload (with pod labels) and a baggage stub of the same workload label differently
    const key = [reporter, src?.uid ?? '', src?.labels ? 'l' : '', principal, dst?.uid ?? '', svc ?? '', security].join('|');
    let l = this.labelCache.get(key);
    if (!l) {
      // a pod outside the mesh has no identity to show (Istio reports "unknown" for it)
      const destinationPrincipal = dst?.meshed ? this.state.identityOf(dst) : UNKNOWN;
      l = peerLabels({ reporter, source: src, sourcePrincipal: principal, destination: dst, destinationPrincipal, serviceHost: svc, security });
      this.labelCache.set(key, l);
    }
    return l;
  }
}
