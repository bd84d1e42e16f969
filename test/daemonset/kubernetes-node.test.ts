// What agent/main.ts gets for --cgroup-layout kubepods: node name, attach point, a resolver fed with the
// pods' QoS classes, and a reconcile signal when meshed pods change; a v1-only node refused up front.
import t from 'tap';
import { join } from 'node:path';

import { silentLogger } from '../../common/log.js';
import type { NamespaceLike, PodLike } from '../../agent/kubernetes/enrollment-policy.js';
import { openKubernetesNode } from '../../agent/kubernetes/kubernetes-node.js';
import { buildTree, FIXTURE_PODS, mountsFixture, tempDir } from './cgroup-fixtures.js';
import { FakeInformer } from './fake-informer.js';

const pod = (uid: string, qos: string): PodLike => ({
  metadata: { uid, namespace: 'shop', name: `p-${uid.slice(0, 4)}` },
  spec: { nodeName: 'node-a' },
  status: { phase: 'Running', qosClass: qos },
});
const meshed: NamespaceLike = { metadata: { name: 'shop', labels: { 'weft.io/mesh': 'enabled' } } };
const workload = (uid: string) => ({ uid, namespace: 'shop', name: 'p', serviceAccount: 'default', node: 'node-a', ips: [], labels: {}, meshed: true, hostNetwork: false, mtlsMode: 'STRICT' as const, workloadName: 'p' });

t.test('a cgroupfs node: attach at kubepods, resolve with the QoS class from the pod watch, signal changes', async (t) => {
  const root = tempDir(t, 'cg');
  buildTree('cgroupfs-v2.tree', root);
  const pods = new FakeInformer<PodLike>([pod(FIXTURE_PODS.Burstable, 'Burstable')]);
  const namespaces = new FakeInformer<NamespaceLike>([meshed]);
  let changes = 0;
  const node = await openKubernetesNode({
    env: { NODE_NAME: 'node-a' },
    cgroupRoot: root,
    procMounts: `cgroup2 ${root} cgroup2 rw 0 0\n`,
    logger: silentLogger,
    onPodsChanged: () => changes++,
    informers: { pods, namespaces },
  });
  t.teardown(() => node.close());
  t.equal(node.nodeName, 'node-a');
  t.equal(node.attachCgroup, join(root, 'kubepods'));
  t.equal(changes, 1, 'the pod running before the agent started asks for a reconcile');
  t.equal(node.pods.qosOf(FIXTURE_PODS.Burstable), 'Burstable');
  t.equal(node.resolver.resolve(workload(FIXTURE_PODS.Burstable))?.path, join(root, 'kubepods', 'burstable', `pod${FIXTURE_PODS.Burstable}`));
  pods.emit('add', pod(FIXTURE_PODS.Guaranteed, 'Guaranteed'));
  t.equal(changes, 2, 'a new meshed pod asks for a reconcile');
  t.ok(node.resolver.resolve(workload(FIXTURE_PODS.Guaranteed)));
  namespaces.emit('update', { metadata: { name: 'shop', labels: {} } });
  t.equal(changes, 4, 'unlabelling the namespace releases both pods');
});

t.test('a cgroup-v1-only node is refused before any watch starts', async (t) => {
  const pods = new FakeInformer<PodLike>();
  const namespaces = new FakeInformer<NamespaceLike>();
  await t.rejects(
    openKubernetesNode({ env: { NODE_NAME: 'node-a' }, procMounts: mountsFixture('v1-only.mounts'), logger: silentLogger, onPodsChanged: () => {}, informers: { pods, namespaces } }),
    { code: 'WEFT_ERR_CGROUP_V1_ONLY' },
  );
  t.equal(pods.started + namespaces.started, 0);
  await t.rejects(openKubernetesNode({ env: {}, logger: silentLogger, onPodsChanged: () => {}, informers: { pods, namespaces } }), { code: 'WEFT_ERR_K8S_NODE_NAME' });
});
