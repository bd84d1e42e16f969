// The Kubernetes collections the controller watches: the design's configuration model (Pods, Services,
// EndpointSlices, Namespaces, ServiceAccounts, Nodes; Weft's CRDs; Gateway API HTTPRoute). CRDs may be missing from
// a cluster (Gateway API is often not installed): their reflectors tolerate 404 and retry.

export interface WatchedKind {
  kind: string;
  apiVersion: string;
  /** lower-case plural resource name in the API path */
  plural: string;
  /** defined by a CustomResourceDefinition, so possibly not installed */
  crd: boolean;
}

export const WATCHED_KINDS: readonly WatchedKind[] = Object.freeze([
  { kind: 'Namespace', apiVersion: 'v1', plural: 'namespaces', crd: false },
  { kind: 'ServiceAccount', apiVersion: 'v1', plural: 'serviceaccounts', crd: false },
  // node addresses: where other node proxies reach a node's inbound tunnel (15008)
  { kind: 'Node', apiVersion: 'v1', plural: 'nodes', crd: false },
  { kind: 'Pod', apiVersion: 'v1', plural: 'pods', crd: false },
  { kind: 'Service', apiVersion: 'v1', plural: 'services', crd: false },
  { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', plural: 'endpointslices', crd: false },
  { kind: 'AuthorizationPolicy', apiVersion: 'weft.io/v1alpha1', plural: 'authorizationpolicies', crd: true },
  { kind: 'PeerAuthentication', apiVersion: 'weft.io/v1alpha1', plural: 'peerauthentications', crd: true },
  { kind: 'TrafficPolicy', apiVersion: 'weft.io/v1alpha1', plural: 'trafficpolicies', crd: true },
  { kind: 'HTTPRoute', apiVersion: 'gateway.networking.k8s.io/v1', plural: 'httproutes', crd: true },
  { kind: 'GRPCRoute', apiVersion: 'gateway.networking.k8s.io/v1', plural: 'grpcroutes', crd: true },
]);

/** the cluster-wide collection path: /api/v1/pods, /apis/discovery.k8s.io/v1/endpointslices, ... */
export function collectionPath(k: WatchedKind): string {
  return k.apiVersion.includes('/') ? `/apis/${k.apiVersion}/${k.plural}` : `/api/${k.apiVersion}/${k.plural}`;
}
