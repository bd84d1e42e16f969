// The kubepods cgroup resolution against real node layouts (systemd and cgroupfs drivers, every QoS class,
// kind's nested --cgroup-root), built as real directory trees; and the refusal of cgroup-v1-only nodes.
import t from 'tap';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { isWeftError } from '../../common/errors.js';
import { cgroup2Roots, parseMounts } from '../../agent/kubernetes/cgroup-mounts.js';
import { detectKubepodsLayout, podCgroupRelPath, type QosClass } from '../../agent/kubernetes/kubepods-layout.js';
import { KubepodsCgroupResolver, openKubepods } from '../../agent/kubernetes/kubepods-resolver.js';
import { buildTree, FIXTURE_PODS, mountsFixture, tempDir } from './cgroup-fixtures.js';

const QOS: QosClass[] = ['Guaranteed', 'Burstable', 'BestEffort'];

function unifiedMounts(cgroupMount: string): string {
  return `proc /proc proc rw 0 0\ncgroup2 ${cgroupMount} cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n`;
}

const EXPECTED: Record<string, { driver: string; kubepods: string; paths: Record<QosClass, string> }> = {
  'systemd-v2.tree': {
    driver: 'systemd',
    kubepods: 'kubepods.slice',
    paths: {
      Guaranteed: 'kubepods.slice/kubepods-pod0f9c3a4e_6d1b_4c8e_9a2f_3b7e5d1c8a90.slice',
      Burstable: 'kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5a1e7c2d_9b3f_4e6a_8c0d_1f2e3a4b5c6d.slice',
      BestEffort: 'kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podc3d4e5f6_a7b8_4c9d_8e0f_1a2b3c4d5e6f.slice',
    },
  },
  'cgroupfs-v2.tree': {
    driver: 'cgroupfs',
    kubepods: 'kubepods',
    paths: {
      Guaranteed: 'kubepods/pod0f9c3a4e-6d1b-4c8e-9a2f-3b7e5d1c8a90',
      Burstable: 'kubepods/burstable/pod5a1e7c2d-9b3f-4e6a-8c0d-1f2e3a4b5c6d',
      BestEffort: 'kubepods/besteffort/podc3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f',
    },
  },
  'kind-systemd-v2.tree': {
    driver: 'systemd',
    kubepods: 'kubelet.slice/kubelet-kubepods.slice',
    paths: {
      Guaranteed: 'kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod0f9c3a4e_6d1b_4c8e_9a2f_3b7e5d1c8a90.slice',
      Burstable: 'kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod5a1e7c2d_9b3f_4e6a_8c0d_1f2e3a4b5c6d.slice',
      BestEffort: 'kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-podc3d4e5f6_a7b8_4c9d_8e0f_1a2b3c4d5e6f.slice',
    },
  },
};

for (const [fixture, want] of Object.entries(EXPECTED)) {
  t.test(`${fixture}: detects the ${want.driver} layout and resolves a pod of every QoS class`, async (t) => {
    const root = join(tempDir(t, 'cg'), 'sys-fs-cgroup');
    buildTree(fixture, root);
    const resolver = openKubepods({ procMounts: unifiedMounts(root) });
    t.equal(resolver.layout.driver, want.driver);
    t.equal(resolver.layout.kubepodsDir, join(root, want.kubepods), 'kubepods cgroup (the attach point)');
    for (const qos of QOS) {
      const uid = FIXTURE_PODS[qos];
      const got = resolver.resolvePod(uid, qos);
      t.ok(got, `${qos} pod resolves`);
      if (!got) continue;
      t.equal(got.path, join(root, want.paths[qos]), `${qos} path`);
      t.equal(got.qos, qos);
      t.equal(got.id, statSync(got.path, { bigint: true }).ino, 'cgroup id is the directory inode');
      t.equal(got.level, want.paths[qos].split('/').length, 'level counted from the cgroup2 root');
      // status.qosClass not filled in yet: still found, with the QoS class it was found under
      t.equal(resolver.resolvePod(uid)?.path, got.path, `${qos} pod resolves without a QoS class`);
    }
    t.equal(resolver.resolvePod('9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b', 'BestEffort'), undefined, 'a pod without a cgroup (not started yet) is undefined');
  });
}

t.test('the path rule for both drivers, without touching the disk', async (t) => {
  const uid = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
  t.equal(podCgroupRelPath({ driver: 'systemd', slicePrefix: 'kubepods' }, uid, 'BestEffort'), 'kubepods-besteffort.slice/kubepods-besteffort-podaaaaaaaa_bbbb_cccc_dddd_eeeeeeeeeeee.slice');
  t.equal(podCgroupRelPath({ driver: 'systemd', slicePrefix: 'kubepods' }, uid, 'Guaranteed'), 'kubepods-podaaaaaaaa_bbbb_cccc_dddd_eeeeeeeeeeee.slice');
  t.equal(podCgroupRelPath({ driver: 'cgroupfs', slicePrefix: '' }, uid, 'Burstable'), `burstable/pod${uid}`);
  t.equal(podCgroupRelPath({ driver: 'cgroupfs', slicePrefix: '' }, uid, 'Guaranteed'), `pod${uid}`);
  for (const bad of ['../../etc', 'abc/def', '', 'pod uid', '..']) {
    t.throws(() => podCgroupRelPath({ driver: 'cgroupfs', slicePrefix: '' }, bad, 'Burstable'), { code: 'WEFT_ERR_KUBEPODS_POD_UID' }, `refuses UID ${JSON.stringify(bad)}`);
  }
});

t.test('inside the agent container: the node tree mounted over the container own cgroup view', async (t) => {
  const dir = tempDir(t, 'cg');
  const host = join(dir, 'sys-fs-cgroup');
  buildTree('systemd-v2.tree', host);
  // Both cgroup2 lines name /sys/fs/cgroup; the path reaches the top one (the node's tree).
  const procMounts = mountsFixture('agent-container.mounts', { '/sys/fs/cgroup': host });
  t.equal((procMounts.match(/ cgroup2 /g) ?? []).length, 2, 'two stacked cgroup2 mounts');
  const r = openKubepods({ procMounts, cgroupRoot: host });
  t.equal(r.layout.kubepodsDir, join(host, 'kubepods.slice'));
  t.equal(r.layout.cgroup2Mount, host);
  t.equal(openKubepods({ procMounts }).layout.kubepodsDir, join(host, 'kubepods.slice'), 'the same without a hint');
  // --cgroup-root pointing straight at the kubepods cgroup
  const direct = openKubepods({ procMounts, cgroupRoot: join(host, 'kubepods.slice') });
  t.equal(direct.layout.kubepodsDir, join(host, 'kubepods.slice'));
  t.equal(direct.resolvePod(FIXTURE_PODS.Burstable, 'Burstable')?.level, 3, 'levels still count from the cgroup2 mount');
});

t.test('the node tree mounted elsewhere (/host/sys/fs/cgroup): found at the hint, not in the container own view', async (t) => {
  const dir = tempDir(t, 'cg');
  const host = join(dir, 'host-cgroup');
  const own = join(dir, 'own-cgroup');
  buildTree('cgroupfs-v2.tree', host);
  mkdirSync(own);
  const procMounts = `cgroup ${own} cgroup2 ro,nsdelegate 0 0\ncgroup2 ${host} cgroup2 ro,nsdelegate 0 0\n`;
  t.equal(openKubepods({ procMounts, cgroupRoot: host }).layout.kubepodsDir, join(host, 'kubepods'));
  t.equal(openKubepods({ procMounts }).layout.kubepodsDir, join(host, 'kubepods'), 'without a hint, the mount that holds kubepods');
  t.throws(() => openKubepods({ procMounts, cgroupRoot: own }), { code: 'WEFT_ERR_KUBEPODS_NOT_FOUND' }, 'the container own view has no pods');
});

t.test('hybrid node: uses the cgroup2 hierarchy under the tmpfs', async (t) => {
  const dir = tempDir(t, 'cg');
  const unified = join(dir, 'cgroup', 'unified');
  buildTree('cgroupfs-v2.tree', unified);
  const procMounts = mountsFixture('hybrid-node.mounts', { '/host/sys/fs/cgroup': join(dir, 'cgroup') });
  const r = openKubepods({ procMounts, cgroupRoot: join(dir, 'cgroup') });
  t.equal(r.layout.driver, 'cgroupfs');
  t.equal(r.resolvePod(FIXTURE_PODS.Guaranteed, 'Guaranteed')?.path, join(unified, 'kubepods', `pod${FIXTURE_PODS.Guaranteed}`));
});

t.test('a cgroup-v1-only node is refused with a clear message', async (t) => {
  const procMounts = mountsFixture('v1-only.mounts');
  for (const hint of [undefined, '/sys/fs/cgroup']) {
    try {
      openKubepods({ procMounts, ...(hint ? { cgroupRoot: hint } : {}) });
      t.fail('accepted a v1-only node');
    } catch (e) {
      t.ok(isWeftError(e));
      t.match(e, { code: 'WEFT_ERR_CGROUP_V1_ONLY', message: /cgroup v1.*cgroup v2 eBPF.*cannot run on a cgroup-v1-only node/s });
      t.match((e as Error).message, /\/sys\/fs\/cgroup\/systemd/, 'names the v1 mounts it found');
    }
  }
  t.throws(() => cgroup2Roots(parseMounts('proc /proc proc rw 0 0\n')), { code: 'WEFT_ERR_CGROUP_NOT_MOUNTED' });
});

t.test('a cgroup2 mount without kubepods is refused, naming where it looked', async (t) => {
  const root = tempDir(t, 'cg');
  mkdirSync(join(root, 'system.slice'));
  t.throws(() => openKubepods({ procMounts: unifiedMounts(root) }), { code: 'WEFT_ERR_KUBEPODS_NOT_FOUND', message: new RegExp(root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) });
});

t.test('a node that switched drivers: the tree holding pods wins; two populated trees are ambiguous', async (t) => {
  const root = tempDir(t, 'cg');
  buildTree('switched-driver.tree', root);
  const r = openKubepods({ procMounts: unifiedMounts(root) });
  t.equal(r.layout.driver, 'systemd');
  t.ok(r.resolvePod(FIXTURE_PODS.BestEffort, 'BestEffort'));
  mkdirSync(join(root, 'kubepods', 'besteffort', `pod${FIXTURE_PODS.Burstable}`));
  t.throws(() => openKubepods({ procMounts: unifiedMounts(root) }), { code: 'WEFT_ERR_KUBEPODS_AMBIGUOUS' });
});

t.test('a pod cgroup that appears later resolves then; one that goes away stops resolving', async (t) => {
  const root = tempDir(t, 'cg');
  buildTree('cgroupfs-v2.tree', root);
  const r = new KubepodsCgroupResolver(detectKubepodsLayout([{ root, mount: root }]));
  const uid = '11111111-2222-4333-8444-555555555555';
  t.equal(r.resolvePod(uid, 'Burstable'), undefined);
  const p = join(root, 'kubepods', 'burstable', `pod${uid}`);
  mkdirSync(p);
  t.equal(r.resolvePod(uid, 'Burstable')?.path, p);
  rmSync(p, { recursive: true });
  t.equal(r.resolvePod(uid, 'Burstable'), undefined);
});

t.test("as capture's CgroupResolver: resolves a MeshConfig workload, with the pod source's QoS hint or without", async (t) => {
  const root = tempDir(t, 'cg');
  buildTree('systemd-v2.tree', root);
  const layout = detectKubepodsLayout([{ root, mount: root }]);
  const workload = (uid: string) => ({ uid, namespace: 'shop', name: 'p', serviceAccount: 'default', node: 'n', ips: [], labels: {}, meshed: true, hostNetwork: false, mtlsMode: 'STRICT' as const, workloadName: 'p' });
  const asked: string[] = [];
  const withHint = new KubepodsCgroupResolver(layout, (uid) => {
    asked.push(uid);
    return 'Guaranteed';
  });
  const g = withHint.resolve(workload(FIXTURE_PODS.Guaranteed));
  t.equal(g?.path, join(root, 'kubepods.slice', 'kubepods-pod0f9c3a4e_6d1b_4c8e_9a2f_3b7e5d1c8a90.slice'));
  t.equal(g?.id, statSync(g!.path, { bigint: true }).ino);
  t.same(asked, [FIXTURE_PODS.Guaranteed], 'asked the pod source for the QoS class');
  const noHint = new KubepodsCgroupResolver(layout);
  t.ok(noHint.resolve(workload(FIXTURE_PODS.BestEffort)), 'found without a hint');
  t.equal(noHint.resolve(workload('../../../etc')), undefined, 'a UID that cannot name a cgroup resolves to nothing');
  t.equal(noHint.resolve(workload('99999999-9999-4999-8999-999999999999')), undefined);
});
