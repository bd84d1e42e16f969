// The controller's ClusterRole must let the Kubernetes source list and watch every collection it watches;
// a kind added to WATCHED_KINDS without RBAC would fail only on a real cluster (403 at every retry).
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { WATCHED_KINDS } from '../../controller/sources/kubernetes.js';
import { repoRoot } from '../helpers/paths.js';

const RBAC = join(repoRoot, 'daemonset', 'controller-rbac.yaml');

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
}

t.test('the controller ClusterRole allows list and watch on every watched collection', { skip: existsSync(RBAC) ? false : 'daemonset/controller-rbac.yaml not present' }, async (t) => {
  const docs = parseAllDocuments(readFileSync(RBAC, 'utf8')).map((d) => d.toJS() as { kind?: string; metadata?: { name?: string }; rules?: Rule[] });
  const role = docs.find((d) => d?.kind === 'ClusterRole' && d.metadata?.name === 'weft-controller');
  t.ok(role, 'ClusterRole weft-controller');
  const rules = role?.rules ?? [];
  for (const k of WATCHED_KINDS) {
    const group = k.apiVersion.includes('/') ? k.apiVersion.split('/')[0]! : '';
    const allowed = (verb: string) => rules.some((r) => r.apiGroups?.includes(group) && r.resources?.includes(k.plural) && r.verbs?.includes(verb));
    t.ok(allowed('list') && allowed('watch'), `list and watch ${k.plural}${group ? '.' + group : ''} (${k.kind})`);
  }
});
