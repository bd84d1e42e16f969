// The kinds the object store accepts and the schema each is checked against. Core Kubernetes kinds get the
// subset of their schema that Weft reads (unknown fields pass, as the API server would have accepted
// them); Weft's CRDs and HTTPRoute are checked strictly. When the CRD manifests exist under
// daemonset/crds/, their openAPIV3Schema replaces the built-in one (crd-schemas.ts), so the cluster and the
// controller enforce the same rules.
import { crdObjectSchema } from './crd-schemas.js';
import type { Schema } from './schema.js';

export interface KindInfo {
  group: string;
  /** accepted apiVersions (group/version, or just version for the core group) */
  apiVersions: string[];
  kind: string;
  namespaced: boolean;
  /** schema of the whole object except metadata */
  schema: Schema;
}

const any: Schema = { 'x-kubernetes-preserve-unknown-fields': true };
const open = (properties: Record<string, Schema>, required?: string[]): Schema => ({ type: 'object', properties, ...(required ? { required } : {}), 'x-kubernetes-preserve-unknown-fields': true });
const strict = (properties: Record<string, Schema>, required?: string[]): Schema => ({ type: 'object', properties, ...(required ? { required } : {}) });
const str: Schema = { type: 'string' };
const strList: Schema = { type: 'array', items: str };
const stringMap: Schema = { type: 'object', additionalProperties: str };
const port: Schema = { type: 'integer', minimum: 1, maximum: 65535 };
const protocol: Schema = { type: 'string', enum: ['TCP', 'UDP', 'SCTP'] };
const ip: Schema = { type: 'string', format: 'ip' };
/** Go-style durations as Istio and Weft use them: 250ms, 5s, 1m30s */
const duration: Schema = { type: 'string', pattern: '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$' };
/** Gateway API durations (GEP-2257) */
const gwDuration: Schema = { type: 'string', pattern: '^([0-9]{1,5}(h|m|s|ms)){1,4}$' };
const selector: Schema = strict({ matchLabels: stringMap });

const podSpec: Schema = open(
  {
    nodeName: str,
    serviceAccountName: str,
    serviceAccount: str,
    hostNetwork: { type: 'boolean' },
    containers: {
      type: 'array',
      minItems: 1,
      items: open({ name: str, image: str, ports: { type: 'array', items: open({ containerPort: port, name: str, protocol }, ['containerPort']) } }, ['name']),
    },
  },
  ['containers'],
);

// Gateway API routes (v1, standard + experimental fields), shaped as upstream's CRDs. The schema checks
// shape; what Weft does not enforce (Gateway parents, CORS, ExtensionRef, session persistence, ...) is
// refused by the semantic checks (controller/store/semantics/httproute.ts, grpcroute.ts) with a message
// saying why, so those fields are typed loosely here on purpose.
const parentRef: Schema = strict({ group: str, kind: str, name: { type: 'string', minLength: 1 }, namespace: str, port, sectionName: str }, ['name']);
const backendObjectRef: Schema = strict({ group: str, kind: str, name: { type: 'string', minLength: 1 }, namespace: str, port }, ['name']);
const headerNameValue: Schema = strict({ name: { type: 'string', minLength: 1, pattern: '^[A-Za-z0-9!#$%&\'*+\\-.^_`|~]+$' }, value: str }, ['name', 'value']);
const headerModifier: Schema = strict({ set: { type: 'array', items: headerNameValue }, add: { type: 'array', items: headerNameValue }, remove: strList });
const pathModifier: Schema = strict({ type: { type: 'string', enum: ['ReplaceFullPath', 'ReplacePrefixMatch'] }, replaceFullPath: str, replacePrefixMatch: str }, ['type']);
const routeFilter: Schema = strict(
  {
    type: { type: 'string', minLength: 1 },
    requestHeaderModifier: headerModifier,
    responseHeaderModifier: headerModifier,
    requestRedirect: strict({ scheme: { type: 'string', enum: ['http', 'https'] }, hostname: str, path: pathModifier, port, statusCode: { type: 'integer', enum: [301, 302, 303, 307, 308] } }),
    urlRewrite: strict({ hostname: str, path: pathModifier }),
    requestMirror: strict({ backendRef: backendObjectRef, percent: { type: 'integer', minimum: 0, maximum: 100 }, fraction: strict({ numerator: { type: 'integer', minimum: 0 }, denominator: { type: 'integer', minimum: 1 } }, ['numerator']) }, ['backendRef']),
    extensionRef: any,
    cors: any,
    externalAuth: any,
  },
  ['type'],
);
const stringMatch = (types: string[]): Schema => strict({ type: { type: 'string', enum: types }, name: { type: 'string', minLength: 1 }, value: str }, ['name', 'value']);
const routeBackendRef: Schema = strict({ group: str, kind: str, name: { type: 'string', minLength: 1 }, namespace: str, port, weight: { type: 'integer', minimum: 0, maximum: 1000000 }, filters: { type: 'array', items: routeFilter } }, ['name']);
const httpRouteSpec: Schema = strict({
  parentRefs: { type: 'array', items: parentRef },
  hostnames: strList,
  rules: {
    type: 'array',
    items: strict({
      name: str,
      matches: {
        type: 'array',
        items: strict({
          path: strict({ type: { type: 'string', enum: ['Exact', 'PathPrefix', 'RegularExpression'] }, value: str }),
          headers: { type: 'array', items: stringMatch(['Exact', 'RegularExpression']) },
          queryParams: { type: 'array', items: stringMatch(['Exact', 'RegularExpression']) },
          method: { type: 'string', enum: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] },
        }),
      },
      filters: { type: 'array', items: routeFilter },
      backendRefs: { type: 'array', items: routeBackendRef },
      timeouts: strict({ request: gwDuration, backendRequest: gwDuration }),
      retry: strict({ codes: { type: 'array', items: { type: 'integer', minimum: 400, maximum: 599 } }, attempts: { type: 'integer', minimum: 0 }, backoff: gwDuration }),
      sessionPersistence: any,
    }),
  },
});
const grpcRouteSpec: Schema = strict({
  parentRefs: { type: 'array', items: parentRef },
  hostnames: strList,
  rules: {
    type: 'array',
    items: strict({
      name: str,
      matches: {
        type: 'array',
        items: strict({
          method: strict({ type: { type: 'string', enum: ['Exact', 'RegularExpression'] }, service: str, method: str }),
          headers: { type: 'array', items: stringMatch(['Exact', 'RegularExpression']) },
        }),
      },
      filters: { type: 'array', items: routeFilter },
      backendRefs: { type: 'array', items: routeBackendRef },
      sessionPersistence: any,
      // not GRPCRoute fields: typed loosely so the semantic check can say where timeouts and retries go
      timeouts: any,
      retry: any,
    }),
  },
});

export const BUILTIN_KINDS: KindInfo[] = [
  { group: '', apiVersions: ['v1'], kind: 'Namespace', namespaced: false, schema: any },
  { group: '', apiVersions: ['v1'], kind: 'ServiceAccount', namespaced: true, schema: any },
  {
    group: '',
    apiVersions: ['v1'],
    kind: 'Node',
    namespaced: false,
    schema: open({ status: open({ addresses: { type: 'array', items: open({ type: str, address: str }, ['type', 'address']) } }) }),
  },
  {
    group: '',
    apiVersions: ['v1'],
    kind: 'Pod',
    namespaced: true,
    schema: open(
      {
        spec: podSpec,
        status: open({
          phase: { type: 'string', enum: ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'] },
          podIP: ip,
          podIPs: { type: 'array', items: open({ ip }, ['ip']) },
          hostIP: ip,
        }),
      },
      ['spec'],
    ),
  },
  {
    group: '',
    apiVersions: ['v1'],
    kind: 'Service',
    namespaced: true,
    schema: open(
      {
        spec: open(
          {
            type: { type: 'string', enum: ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] },
            clusterIP: { type: 'string', pattern: '^(None|[0-9a-fA-F.:]+)?$' },
            clusterIPs: { type: 'array', items: { type: 'string', pattern: '^(None|[0-9a-fA-F.:]+)$' } },
            selector: stringMap,
            ports: {
              type: 'array',
              items: open({ name: str, port, targetPort: { 'x-kubernetes-int-or-string': true }, protocol, appProtocol: str }, ['port']),
            },
          },
          ['ports'],
        ),
      },
      ['spec'],
    ),
  },
  {
    group: 'discovery.k8s.io',
    apiVersions: ['discovery.k8s.io/v1'],
    kind: 'EndpointSlice',
    namespaced: true,
    schema: open(
      {
        addressType: { type: 'string', enum: ['IPv4', 'IPv6', 'FQDN'] },
        endpoints: {
          type: 'array',
          items: open(
            {
              addresses: { type: 'array', minItems: 1, items: str },
              conditions: open({ ready: { type: 'boolean' }, serving: { type: 'boolean' }, terminating: { type: 'boolean' } }),
              nodeName: str,
              targetRef: open({ kind: str, name: str, namespace: str, uid: str }),
            },
            ['addresses'],
          ),
        },
        ports: { type: 'array', items: open({ name: str, port, protocol, appProtocol: str }) },
      },
      ['addressType', 'endpoints'],
    ),
  },
  {
    group: 'apps',
    apiVersions: ['apps/v1'],
    kind: 'Deployment',
    namespaced: true,
    schema: open(
      {
        spec: open(
          {
            replicas: { type: 'integer', minimum: 0 },
            selector: open({ matchLabels: stringMap }),
            template: open({ metadata: open({ labels: stringMap }), spec: podSpec }, ['spec']),
          },
          ['selector', 'template'],
        ),
      },
      ['spec'],
    ),
  },
  // Issue 11's kinds: the schema is the CRD's (daemonset/crds), one source of truth for cluster and controller
  { group: 'weft.io', apiVersions: ['weft.io/v1alpha1'], kind: 'PeerAuthentication', namespaced: true, schema: crdObjectSchema('peerauthentication.yaml') },
  { group: 'weft.io', apiVersions: ['weft.io/v1alpha1'], kind: 'AuthorizationPolicy', namespaced: true, schema: crdObjectSchema('authorizationpolicy.yaml') },
  {
    group: 'weft.io',
    apiVersions: ['weft.io/v1alpha1'],
    kind: 'TrafficPolicy',
    namespaced: true,
    // One schema: the CRD manifest is the source (the cluster's API server enforces the same rules).
    schema: crdObjectSchema('trafficpolicy.yaml'),
  },
  {
    group: 'gateway.networking.k8s.io',
    apiVersions: ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'],
    kind: 'HTTPRoute',
    namespaced: true,
    schema: open({ spec: httpRouteSpec }, ['spec']),
  },
  {
    group: 'gateway.networking.k8s.io',
    apiVersions: ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1alpha2'],
    kind: 'GRPCRoute',
    namespaced: true,
    schema: open({ spec: grpcRouteSpec }, ['spec']),
  },
];

/** group of an apiVersion: "apps/v1" -> "apps", "v1" -> "" */
export function groupOf(apiVersion: string): string {
  const i = apiVersion.lastIndexOf('/');
  return i < 0 ? '' : apiVersion.slice(0, i);
}

export class KindRegistry {
  private readonly byGroupKind = new Map<string, KindInfo>();

  constructor(kinds: KindInfo[]) {
    for (const k of kinds) this.byGroupKind.set(`${k.group}/${k.kind}`, k);
  }

  get(apiVersion: string, kind: string): KindInfo | undefined {
    const k = this.byGroupKind.get(`${groupOf(apiVersion)}/${kind}`);
    return k && k.apiVersions.includes(apiVersion) ? k : undefined;
  }

  /** group/kind pairs accepted, for messages */
  describe(): string {
    return [...this.byGroupKind.values()].map((k) => `${k.apiVersions[0]} ${k.kind}`).join(', ');
  }

  /** replaces the schema of a kind (CRD manifests), adding the apiVersion if new */
  override(group: string, kind: string, apiVersion: string, schema: Schema): void {
    const prev = this.byGroupKind.get(`${group}/${kind}`);
    const apiVersions = prev ? [...new Set([...prev.apiVersions, apiVersion])] : [apiVersion];
    this.byGroupKind.set(`${group}/${kind}`, { group, kind, apiVersions, namespaced: prev?.namespaced ?? true, schema });
  }
}

/** every kind name the store accepts (for a source that replaces all it contributed) */
export const ALL_KIND_NAMES = BUILTIN_KINDS.map((k) => k.kind);
