// One peer label set (who talked to whom, over what security) in Istio's standard labels, from what the
// proxy knows of both ends. Built when a route or connection first needs it and shared from then on
// (agent/proxy/destination.ts caches it per source, destination, Service and config version).
import type { Workload } from '../../common/mesh.js';
import type { PeerLabels, Reporter, SecurityPolicy } from './istio.js';
import { serviceNameOf, UNKNOWN, workloadLabels, type NamedWorkload } from './workload-labels.js';

export interface PeerInput {
  reporter: Reporter;
  /** the source pod, or as much of it as a peer's baggage says; undefined when unknown */
  source: (NamedWorkload & Pick<Workload, 'namespace'>) | undefined;
  sourcePrincipal: string;
  destination: Workload | undefined;
  destinationPrincipal: string;
  /** the called Service's host (`<name>.<namespace>.svc.<trust domain>`), or undefined */
  serviceHost: string | undefined;
  security: SecurityPolicy;
}

export function peerLabels(i: PeerInput): PeerLabels {
  const src = workloadLabels(i.source);
  const dst = workloadLabels(i.destination);
  const host = i.serviceHost ?? UNKNOWN;
  const svc = serviceNameOf(host);
  return Object.freeze({
    reporter: i.reporter,
    source_workload: i.source?.workloadName ?? UNKNOWN,
    source_canonical_service: src.canonicalService,
    source_canonical_revision: src.canonicalRevision,
    source_workload_namespace: i.source?.namespace ?? UNKNOWN,
    source_principal: i.sourcePrincipal,
    source_app: src.app,
    source_version: src.version,
    source_cluster: src.cluster,
    destination_workload: i.destination?.workloadName ?? UNKNOWN,
    destination_workload_namespace: i.destination?.namespace ?? UNKNOWN,
    destination_principal: i.destinationPrincipal,
    destination_app: dst.app,
    destination_version: dst.version,
    destination_service: host,
    destination_canonical_service: dst.canonicalService,
    destination_canonical_revision: dst.canonicalRevision,
    destination_service_name: svc.name,
    destination_service_namespace: svc.namespace,
    destination_cluster: dst.cluster,
    connection_security_policy: i.security,
  });
}
