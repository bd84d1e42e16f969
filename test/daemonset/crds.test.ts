// The weft.io CRDs: valid CustomResourceDefinitions with structural schemas, accepting every example
// object and refusing malformed ones with the field named.
import t from 'tap';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';

import { compileCrd, errorsText, structuralProblems } from './crd-schema.js';
import { daemonsetDir, find, loadInstall, loadYamlFile, type K8sDoc } from './manifests.js';

interface CrdVersion {
  name: string;
  served: boolean;
  storage: boolean;
  schema: { openAPIV3Schema: Record<string, unknown> };
}
interface Crd extends K8sDoc {
  spec: { group: string; scope: string; names: { kind: string; plural: string; singular: string; listKind: string }; versions: CrdVersion[] };
}

const install = loadInstall();
const crds = install.filter((d) => d.obj.kind === 'CustomResourceDefinition').map((d) => d.obj as Crd);
const validators = new Map(crds.map((c) => [c.spec.names.kind, compileCrd(c.spec.versions.find((v) => v.storage)!.schema.openAPIV3Schema)]));

t.test('the three weft.io CRDs are installed, well-formed, structural', async (t) => {
  t.same(crds.map((c) => c.spec.names.kind).sort(), ['AuthorizationPolicy', 'PeerAuthentication', 'TrafficPolicy']);
  for (const crd of crds) {
    t.doesNotThrow(() => new CustomResourceDefinition(crd as never).validate(), `${crd.metadata.name} is a valid CustomResourceDefinition`);
    t.equal(crd.metadata.name, `${crd.spec.names.plural}.${crd.spec.group}`, 'named <plural>.<group>');
    t.equal(crd.spec.group, 'weft.io');
    t.equal(crd.spec.scope, 'Namespaced');
    t.same(crd.spec.versions.map((v) => [v.name, v.served, v.storage]), [['v1alpha1', true, true]], 'one served storage version v1alpha1');
    t.same(structuralProblems(crd.spec.versions[0]!.schema.openAPIV3Schema), [], `${crd.spec.names.kind} schema is structural`);
  }
});

t.test('the structural checker catches what the API server refuses', async (t) => {
  t.match(structuralProblems({ type: 'object', properties: { spec: { properties: { a: { type: 'string' } } } } }), ['openAPIV3Schema.properties.spec: no type']);
  t.match(structuralProblems({ type: 'object', properties: { spec: { type: 'object', properties: {}, additionalProperties: { type: 'string' } } } }), [/mutually exclusive/]);
  t.match(structuralProblems({ type: 'object', properties: { metadata: { type: 'object', properties: { name: { type: 'string' } } } } }), [/only type: object/]);
  t.match(structuralProblems({ type: 'object', properties: { l: { type: 'array' } } }), [/one items schema/]);
});

const examplesDir = join(daemonsetDir, 'examples');
const examples = readdirSync(examplesDir)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => loadYamlFile(join(examplesDir, f)));

t.test('every weft.io example object is accepted by its CRD schema', async (t) => {
  const weft = examples.filter((e) => e.obj.apiVersion === 'weft.io/v1alpha1');
  t.same([...new Set(weft.map((e) => e.obj.kind))].sort(), ['AuthorizationPolicy', 'PeerAuthentication', 'TrafficPolicy'], 'an example for every kind');
  for (const { obj } of weft) {
    const v = validators.get(obj.kind);
    t.ok(v, `a CRD for ${obj.kind}`);
    t.ok(v?.(obj), `${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name}: ${errorsText(v?.errors)}`);
  }
  for (const { obj } of examples.filter((e) => e.obj.apiVersion !== 'weft.io/v1alpha1')) {
    t.match(obj.apiVersion, /^(v1|gateway\.networking\.k8s\.io\/v1)$/, `${obj.kind} example is core or Gateway API`);
  }
});

// Each: kind, what is wrong, the object (as a patch of a valid one), the field the error must name.
const base = {
  AuthorizationPolicy: { apiVersion: 'weft.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'p', namespace: 'n' }, spec: { action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/n/sa/a'] } }] }] } },
  PeerAuthentication: { apiVersion: 'weft.io/v1alpha1', kind: 'PeerAuthentication', metadata: { name: 'p', namespace: 'n' }, spec: { mtls: { mode: 'STRICT' } } },
  TrafficPolicy: { apiVersion: 'weft.io/v1alpha1', kind: 'TrafficPolicy', metadata: { name: 'p', namespace: 'n' }, spec: { targetRef: { kind: 'Service', name: 'cart' } } },
} as const;

const MALFORMED: [keyof typeof base, string, Record<string, unknown>, RegExp][] = [
  ['AuthorizationPolicy', 'unknown action', { action: 'PERMIT' }, /\/spec\/action must be equal to one of the allowed values/],
  ['AuthorizationPolicy', 'a port as a number (Istio uses strings)', { rules: [{ to: [{ operation: { ports: [8080] } }] }] }, /\/spec\/rules\/0\/to\/0\/operation\/ports\/0 must be string/],
  ['AuthorizationPolicy', 'port out of range', { rules: [{ to: [{ operation: { ports: ['123456'] } }] }] }, /ports\/0 must match pattern/],
  ['AuthorizationPolicy', 'a from entry without source', { rules: [{ from: [{ principals: ['x'] }] }] }, /\/spec\/rules\/0\/from\/0 must have required property 'source'/],
  ['AuthorizationPolicy', 'a typo: rule instead of rules', { rule: [] }, /\/spec must NOT have additional properties \(rule\)/],
  ['AuthorizationPolicy', 'principals as a string', { rules: [{ from: [{ source: { principals: 'cluster.local/ns/n/sa/a' } }] }] }, /principals must be array/],
  ['AuthorizationPolicy', 'a when without key', { rules: [{ when: [{ values: ['1'] }] }] }, /\/spec\/rules\/0\/when\/0 must have required property 'key'/],
  ['PeerAuthentication', 'lower-case mode', { mtls: { mode: 'strict' } }, /\/spec\/mtls\/mode must be equal to one of the allowed values/],
  ['PeerAuthentication', 'mtls without mode', { mtls: {} }, /\/spec\/mtls must have required property 'mode'/],
  ['PeerAuthentication', 'bad port-level mode', { selector: { matchLabels: { app: 'a' } }, portLevelMtls: { '8080': { mode: 'OFF' } } }, /\/spec\/portLevelMtls\/8080\/mode must be equal to one of the allowed values/],
  ['PeerAuthentication', 'selector labels that are not strings', { selector: { matchLabels: { app: 1 } } }, /\/spec\/selector\/matchLabels\/app must be string/],
  ['TrafficPolicy', 'no targetRef', { targetRef: undefined }, /\/spec must have required property 'targetRef'/],
  ['TrafficPolicy', 'targetRef to a Deployment', { targetRef: { kind: 'Deployment', name: 'cart' } }, /\/spec\/targetRef\/kind must be equal to one of the allowed values/],
  ['TrafficPolicy', 'a duration in words', { targetRef: { kind: 'Service', name: 'cart' }, timeouts: { request: '3 seconds' } }, /\/spec\/timeouts\/request must match pattern/],
  ['TrafficPolicy', 'maxEjectionPercent above 100', { targetRef: { kind: 'Service', name: 'cart' }, outlierDetection: { maxEjectionPercent: 150 } }, /\/spec\/outlierDetection\/maxEjectionPercent must be <= 100/],
  ['TrafficPolicy', 'unknown load balancer', { targetRef: { kind: 'Service', name: 'cart' }, loadBalancer: { simple: 'FASTEST' } }, /\/spec\/loadBalancer\/simple must be equal to one of the allowed values/],
  ['TrafficPolicy', 'unknown retry condition', { targetRef: { kind: 'Service', name: 'cart' }, retries: { attempts: 2, retryOn: '5xx,sometimes' } }, /\/spec\/retries\/retryOn must match pattern/],
  ['TrafficPolicy', 'negative attempts', { targetRef: { kind: 'Service', name: 'cart' }, retries: { attempts: -1 } }, /\/spec\/retries\/attempts must be >= 0/],
  ['TrafficPolicy', 'zero maxConnections', { targetRef: { kind: 'Service', name: 'cart' }, connectionPool: { tcp: { maxConnections: 0 } } }, /\/spec\/connectionPool\/tcp\/maxConnections must be >= 1/],
];

t.test('malformed objects are refused, naming the field', async (t) => {
  for (const [kind, what, patch, want] of MALFORMED) {
    const obj = structuredClone(base[kind]) as { spec: Record<string, unknown> };
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) delete obj.spec[k];
      else obj.spec[k] = v;
    }
    const v = validators.get(kind)!;
    t.notOk(v(obj), `${kind}: ${what} is refused`);
    t.match(errorsText(v.errors), want, `${kind}: ${what}: the error names the field`);
  }
  for (const kind of Object.keys(base) as (keyof typeof base)[]) {
    t.ok(validators.get(kind)!(structuredClone(base[kind])), `${kind}: the unpatched base object is valid (the refusals above are about the patch)`);
    t.notOk(validators.get(kind)!({ ...structuredClone(base[kind]), spec: undefined }), `${kind}: spec is required`);
  }
});

t.test('the controller may list and watch every weft.io kind, and nothing more of weft.io', async (t) => {
  const role = find(install, 'ClusterRole', 'weft-controller') as K8sDoc & { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] };
  const weftRules = role.rules.filter((r) => r.apiGroups.includes('weft.io'));
  t.same(weftRules.flatMap((r) => r.resources).sort(), crds.map((c) => c.spec.names.plural).sort());
  t.same([...new Set(weftRules.flatMap((r) => r.verbs))].sort(), ['list', 'watch']);
});
