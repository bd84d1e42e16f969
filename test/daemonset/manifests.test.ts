// Every install manifest validates against the Kubernetes OpenAPI schemas (kubernetes-models), and the
// agent DaemonSet, controller and RBAC say what the design requires: host network, exactly the needed
// capabilities, bpffs and cgroup2 mounts, the ports contract, least-privilege RBAC with a reason per rule.
import t from 'tap';
import { isMap, isSeq, type YAMLMap } from 'yaml';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ResourceQuota } from 'kubernetes-models/v1/ResourceQuota';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';

import { PORTS } from '../../common/ports.js';
import { COMMANDS } from '../../cli/registry.js';
import '../../cli/commands.js';
import { find, loadInstall, type K8sDoc } from './manifests.js';
import { WATCHED_KINDS } from '../../controller/sources/kubernetes/kinds.js';

type Validatable = new (data: never) => { validate(): void };
const MODELS: Record<string, Validatable> = {
  'v1/Namespace': Namespace,
  'v1/ResourceQuota': ResourceQuota,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/DaemonSet': DaemonSet,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'apiextensions.k8s.io/v1/CustomResourceDefinition': CustomResourceDefinition,
};

const install = loadInstall();

t.test('every manifest validates against the Kubernetes OpenAPI schema of its kind', async (t) => {
  t.ok(install.length >= 15, `${install.length} objects`);
  for (const { file, obj } of install) {
    const model = MODELS[`${obj.apiVersion}/${obj.kind}`];
    t.ok(model, `${file}: a schema for ${obj.apiVersion} ${obj.kind}`);
    if (!model) continue;
    t.doesNotThrow(() => new model(obj as never).validate(), `${obj.kind} ${obj.metadata.name} (${file.split('/daemonset/')[1]})`);
    if (obj.kind !== 'Namespace' && obj.kind !== 'CustomResourceDefinition' && !obj.kind.startsWith('Cluster')) {
      t.equal(obj.metadata.namespace, 'weft-system', `${obj.kind} ${obj.metadata.name} lives in weft-system`);
    }
  }
  // The validation bites: the same DaemonSet with a wrongly typed field is refused.
  const broken = structuredClone(find(install, 'DaemonSet', 'weft-agent')) as never as { spec: { template: { spec: { containers: { ports: { containerPort: unknown }[] }[] } } } };
  broken.spec.template.spec.containers[0]!.ports[0]!.containerPort = 'fifteen-thousand-one';
  t.throws(() => new DaemonSet(broken as never).validate(), /containerPort must be integer/);
});

interface Container {
  name: string;
  args: string[];
  command: string[];
  env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports: { containerPort: number; name: string }[];
  readinessProbe: { httpGet: { port: number } };
  livenessProbe: { httpGet: { port: number } };
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  securityContext: { privileged?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { add?: string[]; drop?: string[] }; runAsNonRoot?: boolean; readOnlyRootFilesystem?: boolean };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean; mountPropagation?: string }[];
}
interface PodSpec {
  hostNetwork?: boolean;
  hostPID?: boolean;
  dnsPolicy?: string;
  priorityClassName?: string;
  serviceAccountName: string;
  tolerations: { key?: string; operator: string; effect?: string }[];
  containers: Container[];
  volumes: { name: string; hostPath?: { path: string }; projected?: { sources: { serviceAccountToken?: { audience: string; path: string } }[] } }[];
}
interface Workload extends K8sDoc {
  spec: { selector: { matchLabels: Record<string, string> }; updateStrategy?: { rollingUpdate?: { maxUnavailable?: number } }; template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec } };
}

const agent = find(install, 'DaemonSet', 'weft-agent') as Workload;
const agentPod = agent.spec.template.spec;
const agentC = agentPod.containers[0]!;
const flag = (name: string) => agentC.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const mountOf = (path: string) => agentC.volumeMounts.find((m) => m.mountPath === path);
const volume = (name: string) => agentPod.volumes.find((v) => v.name === name);

t.test('agent DaemonSet: host network, every node, node-critical, one node at a time', async (t) => {
  t.equal(agentPod.hostNetwork, true);
  t.notOk(agentPod.hostPID, 'no host PID namespace: the agent never enters pod namespaces');
  t.equal(agentPod.dnsPolicy, 'ClusterFirstWithHostNet', 'reaches the controller Service by name despite host network');
  t.ok(agentPod.tolerations.some((x) => x.operator === 'Exists' && x.key === undefined && x.effect === undefined), 'tolerates every taint');
  t.equal(agentPod.priorityClassName, 'system-node-critical');
  t.equal(agent.spec.updateStrategy?.rollingUpdate?.maxUnavailable, 1);
  t.equal(agentPod.containers.length, 1);
  t.equal(agentPod.serviceAccountName, 'weft-agent');
  t.same(agent.spec.selector.matchLabels, { 'app.kubernetes.io/name': agent.spec.template.metadata.labels['app.kubernetes.io/name'] });
  t.ok(agentC.resources.requests.cpu && agentC.resources.requests.memory && agentC.resources.limits.memory, 'resource requests and a memory limit');
});

t.test('agent: exactly BPF, NET_ADMIN and SYS_ADMIN, not privileged', async (t) => {
  const sc = agentC.securityContext;
  t.equal(sc.privileged, false);
  t.same(sc.capabilities?.drop, ['ALL']);
  t.same([...(sc.capabilities?.add ?? [])].sort(), ['BPF', 'NET_ADMIN', 'SYS_ADMIN']);
  // The API server refuses allowPrivilegeEscalation: false together with CAP_SYS_ADMIN.
  t.not(sc.allowPrivilegeEscalation, false, 'allowPrivilegeEscalation is not false next to SYS_ADMIN');
  t.equal(sc.readOnlyRootFilesystem, true);
  for (const m of agentC.volumeMounts) t.not(m.mountPropagation, 'Bidirectional', `${m.name}: Bidirectional propagation would need a privileged container`);
});

t.test('agent: bpffs and the node cgroup2 tree are mounted where its flags point', async (t) => {
  t.match(flag('bpffs'), /^\/sys\/fs\/bpf\/weft\/[a-z0-9._-]+$/, 'a capture instance under /sys/fs/bpf/weft');
  t.equal(volume(mountOf('/sys/fs/bpf')!.name)?.hostPath?.path, '/sys/fs/bpf', 'bpffs: the node bpffs, so pins outlive the pod');
  const ca = flag('controller-ca')!;
  const caMount = mountOf(ca.slice(0, ca.lastIndexOf('/')));
  t.ok(caMount, '--controller-ca is in a mounted volume');
  t.equal((volume(caMount!.name) as { configMap?: { name: string } } | undefined)?.configMap?.name, 'weft-trust-bundle', 'the trust bundle ConfigMap the controller publishes');
  const cg = mountOf(flag('cgroup-root')!);
  t.ok(cg, '--cgroup-root is a mount');
  t.equal(volume(cg!.name)?.hostPath?.path, '/sys/fs/cgroup', 'of the node cgroup tree');
  t.equal(cg!.readOnly, true, 'read-only: attaching needs only a directory descriptor');
  t.equal(flag('cgroup-layout'), 'kubepods');
  t.ok(mountOf(flag('state-dir')!), '--state-dir is a mount (hostPath: survives restarts)');
  t.equal(volume(mountOf(flag('state-dir')!)!.name)?.hostPath?.path, '/var/lib/weft');
});

t.test('agent: node name from the downward API; controller token with its own audience', async (t) => {
  const nodeEnv = agentC.env.find((e) => e.name === 'NODE_NAME');
  t.equal(nodeEnv?.valueFrom?.fieldRef?.fieldPath, 'spec.nodeName');
  t.equal(flag('node'), '$(NODE_NAME)');
  const tokenFile = flag('token-file')!;
  const dir = tokenFile.slice(0, tokenFile.lastIndexOf('/'));
  const m = mountOf(dir);
  t.ok(m, 'the token file is in a mounted volume');
  const src = volume(m!.name)?.projected?.sources.find((s) => s.serviceAccountToken)?.serviceAccountToken;
  t.equal(src?.audience, 'weft-controller', 'a projected token for the controller, not the API server');
  t.equal(`${dir}/${src?.path}`, tokenFile);
  t.equal(flag('controller'), `weft-controller.weft-system.svc:${PORTS.controllerGrpc}`);
});

t.test('agent: ports, probes and Prometheus annotations follow common/ports.ts', async (t) => {
  const ports = Object.fromEntries(agentC.ports.map((p) => [p.containerPort, p.name]));
  for (const p of [PORTS.outbound, PORTS.inboundTunnel, PORTS.metrics, PORTS.health]) t.ok(ports[p], `declares ${p}`);
  t.notOk(ports[PORTS.admin], 'the admin port (loopback only) is not declared');
  t.equal(agentC.readinessProbe.httpGet.port, PORTS.health);
  t.equal(agentC.livenessProbe.httpGet.port, PORTS.health);
  const ann = agent.spec.template.metadata.annotations ?? {};
  t.equal(ann['prometheus.io/scrape'], 'true');
  t.equal(ann['prometheus.io/port'], String(PORTS.metrics));
});

t.test('agent: preStop runs the uninstall check, a registered weft command', async (t) => {
  const cmd = agentC.lifecycle?.preStop?.exec?.command ?? [];
  t.same(cmd.slice(0, 2), agentC.command, 'the same entry point as the agent');
  t.equal(cmd[2], 'node-cleanup');
  t.ok(COMMANDS.has('node-cleanup'), '`weft node-cleanup` exists');
  t.ok(cmd.includes('--if-uninstalling'), 'only removes pins on uninstall, never on a rolling update');
  t.ok(cmd.includes(`--state-dir=${flag('state-dir')}`));
  const pinDir = cmd.find((a) => a.startsWith('--pin-dir='))?.slice('--pin-dir='.length) ?? '';
  t.match(pinDir, /^\/sys\/fs\/bpf\/weft/, 'pins under the mounted bpffs');
  t.ok(flag('bpffs')!.startsWith(pinDir + '/') || flag('bpffs') === pinDir, "covers the agent's capture instance");
});

t.test('controller: Service on 15012 and 15014, PDB and Deployment select the same pods', async (t) => {
  const dep = find(install, 'Deployment', 'weft-controller') as Workload & { spec: { replicas: number } };
  const svc = find(install, 'Service', 'weft-controller') as K8sDoc & { spec: { selector: Record<string, string>; ports: { port: number; targetPort: number }[] } };
  const pdb = find(install, 'PodDisruptionBudget', 'weft-controller') as K8sDoc & { spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } };
  t.same(svc.spec.ports.map((p) => [p.port, p.targetPort]).sort(), [[PORTS.controllerGrpc, PORTS.controllerGrpc], [PORTS.controllerWeb, PORTS.controllerWeb]]);
  const labels = dep.spec.template.metadata.labels;
  for (const [k, v] of Object.entries(svc.spec.selector)) t.equal(labels[k], v, `Service selects ${k}`);
  for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels)) t.equal(labels[k], v, `PDB selects ${k}`);
  t.ok(dep.spec.replicas > pdb.spec.minAvailable, 'the PDB leaves room for a drain');
  const c = dep.spec.template.spec.containers[0]!;
  t.same(c.ports.map((p) => p.containerPort).sort(), [PORTS.controllerGrpc, PORTS.controllerWeb]);
  t.equal(c.securityContext.allowPrivilegeEscalation, false);
  t.same(c.securityContext.capabilities?.drop, ['ALL']);
  t.notOk(c.securityContext.capabilities?.add, 'the controller needs no capability');
  t.notOk(dep.spec.template.spec.hostNetwork);
});

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

t.test('RBAC: least privilege, and every rule says why', async (t) => {
  for (const { obj, ast } of install.filter((d) => d.obj.kind === 'Role' || d.obj.kind === 'ClusterRole')) {
    const rules = (obj as K8sDoc & { rules: Rule[] }).rules;
    const seq = (ast.contents as YAMLMap).get('rules');
    t.ok(isSeq(seq), `${obj.kind} ${obj.metadata.name} has rules`);
    if (!isSeq(seq)) continue;
    seq.items.forEach((item, i) => {
      const comment = isMap(item) ? (item.commentBefore ?? (i === 0 ? seq.commentBefore : undefined)) : undefined;
      t.ok(comment && comment.trim().length > 20, `${obj.kind} ${obj.metadata.name} rule ${i} (${rules[i]!.resources.join(',')}) has a comment saying why`);
    });
    for (const r of rules) {
      for (const f of [r.apiGroups, r.resources, r.verbs]) t.notOk(f.includes('*'), `${obj.metadata.name}: no wildcards`);
    }
  }
  const agentRules = (find(install, 'ClusterRole', 'weft-agent') as K8sDoc & { rules: Rule[] }).rules;
  t.same([...new Set(agentRules.flatMap((r) => r.verbs))].sort(), ['get', 'list', 'watch'], 'the agent only reads, cluster-wide');
  t.same(agentRules.flatMap((r) => r.resources).sort(), ['namespaces', 'pods']);
  const agentRole = (find(install, 'Role', 'weft-agent') as K8sDoc & { rules: Rule[] }).rules;
  t.same(agentRole, [{ apiGroups: ['apps'], resources: ['daemonsets'], resourceNames: [agent.metadata.name], verbs: ['get'] }], 'and reads only its own DaemonSet in weft-system');

  const ctrl = (find(install, 'ClusterRole', 'weft-controller') as K8sDoc & { rules: Rule[] }).rules;
  const writes = ctrl.filter((r) => r.verbs.some((v) => !['get', 'list', 'watch'].includes(v)));
  t.same(writes, [{ apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] }], 'cluster-wide the controller only creates TokenReviews');
  t.notOk(ctrl.some((r) => r.resources.includes('secrets')), 'no cluster-wide Secret access');
  for (const [group, res] of [['', 'pods'], ['', 'services'], ['', 'namespaces'], ['', 'serviceaccounts'], ['discovery.k8s.io', 'endpointslices'], ['gateway.networking.k8s.io', 'httproutes']] as const) {
    t.ok(ctrl.some((r) => r.apiGroups.includes(group) && r.resources.includes(res) && r.verbs.includes('watch')), `controller watches ${res}`);
  }
  const ctrlRole = (find(install, 'Role', 'weft-controller') as K8sDoc & { rules: Rule[] }).rules;
  t.ok(ctrlRole.every((r) => r.resources.every((x) => x === 'secrets' || x === 'configmaps' || x === 'leases')), 'in weft-system only Secrets (the CA), ConfigMaps (the trust bundle) and Leases (leader election)');
  t.ok(ctrlRole.some((r) => r.resources.includes('leases') && r.resourceNames?.includes('weft-controller') && r.verbs.includes('update')), 'the replicas elect a leader with the Lease weft-controller');
  t.ok(ctrlRole.some((r) => r.resources.includes('secrets') && r.resourceNames?.includes('weft-ca-root') && r.verbs.includes('watch')), 'every replica watches the CA Secret (a rotation on one is seen by all)');
  t.ok(ctrlRole.some((r) => r.resources.includes('configmaps') && r.resourceNames?.includes('weft-trust-bundle')), 'the trust bundle ConfigMap the agents mount');
  t.ok(ctrlRole.filter((r) => r.verbs.some((v) => v !== 'create')).every((r) => r.resourceNames?.length), 'reading and updating limited to named Secrets');
});

t.test('bindings bind each role to its own service account', async (t) => {
  for (const { obj } of install.filter((d) => d.obj.kind.endsWith('Binding'))) {
    const b = obj as K8sDoc & { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace: string }[] };
    t.equal(b.roleRef.name, b.metadata.name);
    t.same(b.subjects, [{ kind: 'ServiceAccount', name: b.metadata.name, namespace: 'weft-system' }]);
    t.ok(install.some((d) => d.obj.kind === b.roleRef.kind && d.obj.metadata.name === b.roleRef.name), `${b.roleRef.kind} ${b.roleRef.name} exists`);
    t.ok(install.some((d) => d.obj.kind === 'ServiceAccount' && d.obj.metadata.name === b.metadata.name), `ServiceAccount ${b.metadata.name} exists`);
  }
});

t.test("the controller's RBAC lets it list and watch every kind its Kubernetes source watches", async (t) => {
  const ctrl = (find(install, 'ClusterRole', 'weft-controller') as K8sDoc & { rules: Rule[] }).rules;
  for (const k of WATCHED_KINDS) {
    const group = k.apiVersion.includes('/') ? k.apiVersion.slice(0, k.apiVersion.indexOf('/')) : '';
    for (const verb of ['list', 'watch']) {
      t.ok(ctrl.some((r) => r.apiGroups.includes(group) && r.resources.includes(k.plural) && r.verbs.includes(verb)), `${verb} ${k.plural} (${k.kind})`);
    }
  }
});
