// agent/main.ts's capture wiring for --cgroup-layout kubepods (agent/capture-cgroups.ts): attach at the
// kubepods cgroup, resolve pods through the Kubernetes node's resolver, and re-apply the last config as soon
// as a pod on this node starts (its cgroup now exists) instead of waiting for the retry timer.
import t from 'tap';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { silentLogger } from '../../common/log.js';
import type { MeshConfig } from '../../common/mesh.js';
import { openCaptureCgroups } from '../../agent/capture-cgroups.js';
import type { NamespaceLike, PodLike } from '../../agent/kubernetes/enrollment-policy.js';
import type { DesiredRedirect } from '../../agent/redirect/desired.js';
import { CaptureSync } from '../../agent/state/capture-sync.js';
import { buildTree, FIXTURE_PODS, tempDir } from './cgroup-fixtures.js';
import { FakeInformer } from './fake-informer.js';

const NEW_POD = '0b6f1c2e-5d4a-4f3b-9e8d-7c6b5a493827';
const pod = (uid: string, qos: string): PodLike => ({
  metadata: { uid, namespace: 'shop', name: `p-${uid.slice(0, 4)}` },
  spec: { nodeName: 'node-a' },
  status: { phase: 'Running', qosClass: qos },
});
const workload = (uid: string) => ({ uid, namespace: 'shop', name: `p-${uid.slice(0, 4)}`, serviceAccount: 'default', node: 'node-a', ips: [], labels: {}, meshed: true, hostNetwork: false, mtlsMode: 'STRICT' as const, workloadName: 'p' });
const config: MeshConfig = { version: 1, trustDomain: 'cluster.local', nodes: [], services: [], policies: [], workloads: [workload(FIXTURE_PODS.Burstable), workload(NEW_POD)] };

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

t.test('kubepods: a pod starting on the node is enrolled at once, not on the retry timer', async (t) => {
  const root = tempDir(t, 'wire');
  buildTree('cgroupfs-v2.tree', root);
  const pods = new FakeInformer<PodLike>([pod(FIXTURE_PODS.Burstable, 'Burstable')]);
  const namespaces = new FakeInformer<NamespaceLike>([{ metadata: { name: 'shop', labels: { 'weft.io/mesh': 'enabled' } } }]);
  const reconciled: DesiredRedirect[] = [];
  let sync: CaptureSync | undefined;
  const cgroups = await openCaptureCgroups({
    layout: 'kubepods',
    cgroupRoot: root,
    node: 'node-a',
    env: {},
    logger: silentLogger,
    resync: () => sync?.resync(),
    informers: { pods, namespaces },
    procMounts: `cgroup2 ${root} cgroup2 rw 0 0\n`,
  });
  t.teardown(() => cgroups.close());
  t.equal(cgroups.attachAt, join(root, 'kubepods'), 'capture attaches at kubepods');
  // a retry timer far beyond the test: only the pod watch can enroll the new pod in time
  sync = new CaptureSync({ reconcile: (d) => (reconciled.push(d), { added: 0, removed: 0 } as never) }, cgroups.resolver, 'node-a', silentLogger, 3_600_000);
  t.teardown(() => sync!.stop());

  sync.apply(config);
  t.same(reconciled.at(-1)!.pods.map((p) => p.uid), [FIXTURE_PODS.Burstable], 'the running pod is enrolled');
  t.equal(sync.unresolved, 1, 'the new pod has no cgroup yet');

  // the kubelet creates the pod's cgroup, then the pod shows up in the watch
  mkdirSync(join(root, 'kubepods', 'burstable', `pod${NEW_POD}`));
  const before = reconciled.length;
  pods.emit('add', pod(NEW_POD, 'Burstable'));
  await until(() => reconciled.length > before, 2000, 'a reconcile after the pod event');
  t.same(reconciled.at(-1)!.pods.map((p) => p.uid).sort(), [FIXTURE_PODS.Burstable, NEW_POD].sort(), 'the new pod is enrolled');
  t.equal(sync.unresolved, 0);

  // a burst of events coalesces into one pass
  const n = reconciled.length;
  for (let i = 0; i < 5; i++) pods.emit('update', pod(NEW_POD, 'Burstable'));
  namespaces.emit('update', { metadata: { name: 'shop', labels: {} } });
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 20));
  t.ok(reconciled.length - n <= 2, `a burst of pod events coalesces (${reconciled.length - n} passes)`);
});

t.test('sandbox: the given subtree, no watch', async (t) => {
  const cgroups = await openCaptureCgroups({ layout: 'sandbox', cgroupRoot: '/sys/fs/cgroup/weft-x', node: 'n', env: {}, logger: silentLogger, resync: () => t.fail('no resync') });
  t.equal(cgroups.attachAt, '/sys/fs/cgroup/weft-x');
  t.equal(cgroups.resolver.resolve(workload(NEW_POD)), undefined);
  await cgroups.close();
});
