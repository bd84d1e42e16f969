// The sandbox spec and plan, without touching the machine: validation names object and field, Deployments
// expand and spread, addresses and service rules come out as designed.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { WeftConfigError } from '../../common/errors.js';
import { planSandbox, podUid } from '../../sandbox/plan.js';
import { hostsFile, resolvConf, serviceRules } from '../../sandbox/services.js';
import { parseSpec } from '../../sandbox/spec/parse.js';
import { endpointSlices, podObject } from '../../sandbox/kube.js';
import { repoRoot } from '../helpers/paths.js';

const paths = { runDir: '/run/weft-sandbox/x', cgroupMount: '/sys/fs/cgroup', bpffsDir: '/sys/fs/bpf/weft-sandbox-x' };
const plan = (yaml: string, nodes = 2) => planSandbox(parseSpec(yaml, 'spec.yaml'), { id: 'x', nodes, paths, specDir: '/srv' });

const NS = `apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { weft.io/mesh: enabled } }
`;
const pod = (name: string, extra = '') => `---
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: shop, labels: { app: ${name} } }
spec:
  ${extra}
  containers:
    - name: main
      command: [sleep, infinity]
      ports: [{ name: http, containerPort: 8080 }]
`;

function refusal(yaml: string, nodes = 2): WeftConfigError | undefined {
  try {
    plan(yaml, nodes);
  } catch (e) {
    if (e instanceof WeftConfigError) return e;
    throw e;
  }
  return undefined;
}

t.test('bad specs are refused with the object and field named', async (t) => {
  const refused = (yaml: string, where: RegExp, message: RegExp, nodes = 2) => {
    const e = refusal(yaml, nodes);
    t.ok(e, `refused: ${message}`);
    t.match(e?.where, where, 'names object and field');
    t.match(e?.message, message);
  };
  refused('apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c }\n', /ConfigMap default\/c: kind/, /unknown kind "ConfigMap"/);
  refused('apiVersion: v1\nkind: Pod\nmetadata: { name: p }\nspec:\n  containers: [{ name: c, image: nginx }]\n', /Pod default\/p: spec.containers\[0\].command/, /is required/);
  refused(NS + pod('a') + pod('a'), /Pod shop\/a: metadata.name/, /duplicate/);
  refused(NS + pod('a', 'nodeName: node-7'), /Pod shop\/a: spec.nodeName/, /node "node-7" does not exist/);
  refused(pod('a'), /Pod shop\/a: metadata.namespace/, /namespace "shop" is not declared/);
  refused(NS + pod('a', 'serviceAccountName: nobody'), /spec.serviceAccountName/, /service account "nobody" does not exist/);
  refused(NS + `---\napiVersion: v1\nkind: Service\nmetadata: { name: s, namespace: shop }\nspec:\n  ports: [{ port: 70000 }]\n`, /Service shop\/s: spec.ports\[0\].port/, /from 1 to 65535/);
  refused(NS + pod('a') + `---\napiVersion: v1\nkind: Service\nmetadata: { name: s, namespace: shop }\nspec:\n  selector: { app: a }\n  ports: [{ port: 80, targetPort: web }]\n`, /spec.ports\[0\].targetPort/, /no selected pod has a container port named "web"/);
  refused(NS + `---\napiVersion: v1\nkind: Service\nmetadata: { name: s, namespace: shop }\nspec:\n  clusterIP: 10.96.0.1\n  ports: [{ port: 80 }]\n`, /spec.clusterIP/, /not in the sandbox's service range/);
  refused('apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: d }\nspec:\n  selector: { matchLabels: { app: x } }\n  template:\n    metadata: { labels: { app: y } }\n    spec: { containers: [{ name: c, command: [sleep, "1"] }] }\n', /Deployment default\/d: spec.template.metadata.labels.app/, /match spec.selector/);
  refused('kind: Pod\nmetadata: { name: p }\n', /document 1: apiVersion/, /is required/);
  refused('a: [1, 2\n', /document 1/, /not valid YAML/);
  refused(NS + pod('a'), /--nodes/, /from 1 to 64/, 0);
});

t.test('Deployments expand to stable, spread pods with their template labels', async (t) => {
  const yaml = NS + `---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: shop }
spec:
  replicas: 3
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web, tier: front } }
    spec: { containers: [{ name: web, command: [node, web.mjs], ports: [{ name: http, containerPort: 8080 }] }] }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: http }]
`;
  const p = plan(yaml);
  t.equal(p.pods.length, 3);
  for (const pd of p.pods) {
    t.match(pd.name, /^web-[bcdfghjklmnpqrstvwxz2456789]{10}-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    t.equal(pd.labels.tier, 'front');
    t.equal(pd.uid, podUid('x', 'shop', pd.name));
    t.equal(pd.cgroup, `/sys/fs/cgroup/weft-sandbox-x/${pd.node}/pod-${pd.uid}`);
    t.equal(pd.containers[0]!.cwd, '/srv', 'relative commands run from the spec directory');
    t.ok(pd.meshed);
  }
  t.same(p.pods.map((x) => x.node), ['node-1', 'node-2', 'node-1'], 'replicas spread over the nodes');
  t.same(p.pods.map((x) => x.ip), ['10.98.1.2', '10.98.2.2', '10.98.1.3']);
  t.same(plan(yaml).pods.map((x) => x.name), p.pods.map((x) => x.name), 'names are stable');
  const svc = p.services[0]!;
  t.equal(svc.clusterIP, '10.97.0.1');
  t.same(svc.endpoints.map((e) => e.ports.http), [8080, 8080, 8080], 'named targetPort resolved');

  const rules = serviceRules(p);
  t.match(rules, /-A WEFT-SERVICES -d 10\.97\.0\.1\/32 -p tcp --dport 80 -j WEFT-SVC-1/);
  t.match(rules, /--probability 0\.333333 -j DNAT --to-destination 10\.98\.1\.2:8080/);
  t.match(rules, /-A WEFT-SVC-1 -p tcp -j DNAT --to-destination 10\.98\.1\.3:8080/, 'last endpoint takes the rest');

  const hosts = hostsFile(p, p.pods[0]!);
  t.match(hosts, /10\.97\.0\.1\tweb\.shop\.svc\.cluster\.local web\.shop\.svc web\.shop web\n/);
  t.match(resolvConf('shop'), /search shop\.svc\.cluster\.local svc\.cluster\.local cluster\.local/);

  const obj = podObject(p, p.pods[1]!) as unknown as { metadata: { uid: string; ownerReferences: { kind: string }[] }; status: { podIP: string; hostIP: string } };
  t.equal(obj.metadata.uid, p.pods[1]!.uid);
  t.equal(obj.metadata.ownerReferences[0]!.kind, 'ReplicaSet');
  t.same([obj.status.podIP, obj.status.hostIP], ['10.98.2.2', '10.99.0.12']);
  const slices = endpointSlices(p, svc) as unknown as { endpoints: unknown[]; ports: { port: number }[] }[];
  t.equal(slices.length, 1);
  t.equal(slices[0]!.endpoints.length, 3);
  t.equal(slices[0]!.ports[0]!.port, 8080);
});

t.test('the demo spec is valid', async (t) => {
  const file = join(repoRoot, 'sandbox', 'demo.yaml');
  const p = planSandbox(parseSpec(readFileSync(file, 'utf8'), file), { id: 'x', nodes: 2, paths, specDir: join(repoRoot, 'sandbox') });
  t.ok(p.namespaces.some((n) => n.meshed), 'a namespace in the mesh');
  t.ok(p.namespaces.some((n) => n.declared && !n.meshed), 'a namespace left out of the mesh');
  t.ok(p.services.some((s) => s.ports.some((x) => x.appProtocol === 'grpc')), 'a gRPC service');
  t.ok(p.services.some((s) => s.ports.some((x) => x.appProtocol === 'tcp')), 'a plain TCP service');
  t.same([...new Set(p.pods.map((x) => x.node))].sort(), ['node-1', 'node-2'], 'spread over both nodes');
  const { validateForController } = await import('../../sandbox/validate.js');
  t.doesNotThrow(() => validateForController(p), 'the controller accepts every object');
});

t.test('Weft objects the controller would refuse are refused before anything is built', async (t) => {
  const { validateForController } = await import('../../sandbox/validate.js');
  const bad = NS + `---
apiVersion: weft.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: p, namespace: shop }
spec:
  action: MAYBE
`;
  t.throws(() => validateForController(plan(bad)), { name: 'WeftConfigError', message: /spec\.yaml: AuthorizationPolicy shop\/p, field spec\.action/ });
  t.doesNotThrow(() => validateForController(plan(NS + pod('a'))));
});
