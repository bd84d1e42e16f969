// Valid objects of every kind the controller validates, as fuzzing starts: the shipped examples plus one
// of each kind they lack (GRPCRoute, annotated Namespace and Pod, Service, EndpointSlice).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseObjects } from '../../../controller/sources/yaml-objects.js';
import type { KubeObject } from '../../../controller/sources/types.js';
import { REPO } from '../repo.js';

const GW = 'gateway.networking.k8s.io/v1';

const EXTRA: KubeObject[] = [
  {
    apiVersion: GW,
    kind: 'GRPCRoute',
    metadata: { name: 'cart-grpc', namespace: 'shop' },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'cart', port: 9090 }],
      rules: [{ matches: [{ method: { service: 'shop.Cart', method: 'Get' }, headers: [{ name: 'x-canary', value: '1' }] }], backendRefs: [{ name: 'cart-v2', port: 9090, weight: 1 }] }],
    },
  },
  {
    apiVersion: GW,
    kind: 'HTTPRoute',
    metadata: { name: 'cart-filters', namespace: 'shop' },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'cart' }],
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: '/a' }, method: 'GET', headers: [{ type: 'RegularExpression', name: 'x', value: '^a+$' }], queryParams: [{ name: 'q', value: 'v' }] }],
          filters: [
            { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-a', value: 'b' }], remove: ['x-b'] } },
            { type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/b' } } },
          ],
          backendRefs: [{ name: 'cart', port: 8080 }],
        },
      ],
    },
  },
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'weft.io/mesh': 'enabled' }, annotations: { 'weft.io/fail-mode': 'open', 'weft.io/access-log': 'json' } } },
  {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-1', namespace: 'shop', labels: { app: 'web' }, annotations: { 'weft.io/access-log': 'json' } },
    spec: { nodeName: 'node-1', serviceAccountName: 'web', containers: [{ name: 'web', image: 'nginx', ports: [{ containerPort: 8080 }] }] },
    status: { phase: 'Running', podIP: '10.98.1.5', podIPs: [{ ip: '10.98.1.5' }], conditions: [{ type: 'Ready', status: 'True' }] },
  },
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'cart', namespace: 'shop' }, spec: { clusterIP: '10.97.0.9', selector: { app: 'cart' }, ports: [{ name: 'http', port: 8080, targetPort: 8080, protocol: 'TCP', appProtocol: 'http' }] } },
  {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'cart-abc', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'cart' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['10.98.1.7'], conditions: { ready: true }, nodeName: 'node-1', targetRef: { kind: 'Pod', name: 'cart-1', namespace: 'shop' } }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  },
];

export function exampleYaml(): string[] {
  const dir = join(REPO, 'daemonset', 'examples');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8'));
}

export function seedObjects(): KubeObject[] {
  return [...exampleYaml().flatMap((y, i) => parseObjects(y, `example-${i}`)), ...EXTRA];
}
