// `kubectl apply -k daemonset/` installs everything: the kustomization lists every manifest in daemonset/
// (examples, the dashboard and the Dockerfile are not manifests), and only files that exist.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';

import { daemonsetDir, kustomization, loadInstall } from './manifests.js';

// Directories under daemonset/ that hold things other than installed manifests.
const NOT_INSTALLED = new Set(['examples', 'grafana']);

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) {
      if (!NOT_INSTALLED.has(relative(daemonsetDir, p))) out.push(...yamlFiles(p));
    } else if (/\.ya?ml$/.test(e) && e !== 'kustomization.yaml') out.push(relative(daemonsetDir, p));
  }
  return out;
}

t.test('the kustomization lists every manifest, once, and nothing missing', async (t) => {
  const listed = kustomization().resources;
  t.same([...listed].sort(), yamlFiles(daemonsetDir).sort(), 'resources == the YAML files in daemonset/');
  t.equal(new Set(listed).size, listed.length, 'no duplicates');
  for (const r of listed) t.ok(existsSync(join(daemonsetDir, r)), `${r} exists`);
  const ns = listed.indexOf('namespace.yaml');
  t.equal(ns, 0, 'the namespace comes first (kubectl applies in order when kustomize does not reorder)');
});

t.test('every object has a unique kind/namespace/name and carries the part-of label', async (t) => {
  const seen = new Set<string>();
  for (const { obj } of loadInstall()) {
    const key = `${obj.kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
    t.notOk(seen.has(key), `${key} once`);
    seen.add(key);
    t.equal(obj.metadata.labels?.['app.kubernetes.io/part-of'], 'weft', `${key} is labelled part-of=weft (kubectl delete -l works)`);
  }
});

t.test('the image the manifests use is the one the kustomization pins', async (t) => {
  const images = kustomization().images ?? [];
  for (const { obj } of loadInstall().filter((d) => d.obj.kind === 'DaemonSet' || d.obj.kind === 'Deployment')) {
    const spec = obj as unknown as { spec: { template: { spec: { containers: { image: string }[] } } } };
    for (const c of spec.spec.template.spec.containers) t.ok(images.some((i) => c.image.startsWith(i.name + ':') || c.image === i.name), `${obj.metadata.name}: ${c.image} is managed by images:`);
  }
});

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
t.test('kubectl kustomize renders the same objects', { skip: kubectl.status === 0 ? false : 'kubectl is not installed here' }, async (t) => {
  const r = spawnSync('kubectl', ['kustomize', daemonsetDir], { encoding: 'utf8', timeout: 30_000 });
  t.equal(r.status, 0, r.stderr);
  const rendered = parseAllDocuments(r.stdout);
  const names = (Array.isArray(rendered) ? rendered : [])
    .map((d) => d.toJS() as { kind: string; metadata: { name: string } })
    .map((o) => `${o.kind}/${o.metadata.name}`)
    .sort();
  t.same(names, loadInstall().map((d) => `${d.obj.kind}/${d.obj.metadata.name}`).sort());
});
