// The weft.io CRDs: valid CustomResourceDefinitions with structural schemas, accepting every example
// object and refusing malformed ones with the field named.
import t from 'tap';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';

import { compileCrd, errorsText, structuralProblems } from './crd-schema.js';
import { base, MALFORMED, patched } from './crd-cases.js';
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

t.test('malformed objects are refused, naming the field', async (t) => {
  for (const [kind, what, patch, want] of MALFORMED) {
    const obj = patched(kind, patch);
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
