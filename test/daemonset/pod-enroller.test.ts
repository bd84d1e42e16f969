// Pods become enrolled cgroups: found through the real kubepods resolver on a real directory tree,
// retried until the kubelet creates the cgroup, released on unenroll, and a capture refusal is retried.
import t from 'tap';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { silentLogger } from '../../common/log.js';
import type { NodePod } from '../../agent/kubernetes/enrollment-policy.js';
import { detectKubepodsLayout } from '../../agent/kubernetes/kubepods-layout.js';
import { KubepodsCgroupResolver, type PodCgroup } from '../../agent/kubernetes/kubepods-resolver.js';
import { PodEnroller } from '../../agent/kubernetes/pod-enroller.js';
import { buildTree, FIXTURE_PODS, tempDir } from './cgroup-fixtures.js';

function nodePod(uid: string, name: string, qos: NodePod['qos']): NodePod {
  return { uid, namespace: 'shop', name, serviceAccount: 'default', qos, ips: [] };
}

class Capture {
  map = new Map<bigint, string>();
  refuse = 0;
  enroll(p: NodePod, c: PodCgroup): void {
    if (this.refuse > 0) {
      this.refuse--;
      throw new Error('map full');
    }
    this.map.set(c.id, p.name);
  }
  unenroll(_p: NodePod, c: PodCgroup): void {
    this.map.delete(c.id);
  }
}

t.test('enrolls existing pod cgroups by id, waits for missing ones, releases on unenroll', async (t) => {
  const root = tempDir(t, 'cg');
  buildTree('systemd-v2.tree', root);
  const resolver = new KubepodsCgroupResolver(detectKubepodsLayout([{ root, mount: root }]));
  const capture = new Capture();
  const enroller = new PodEnroller({ cgroups: resolver, target: capture, logger: silentLogger, retryIntervalMs: 10 });
  t.teardown(() => enroller.close());

  enroller.enroll(nodePod(FIXTURE_PODS.Burstable, 'cart', 'Burstable'));
  await enroller.retryPending();
  const cartDir = join(root, 'kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5a1e7c2d_9b3f_4e6a_8c0d_1f2e3a4b5c6d.slice');
  t.equal(capture.map.get(statSync(cartDir, { bigint: true }).ino), 'cart', 'the pod cgroup id is in the capture map');

  const newUid = '77777777-8888-4999-8aaa-bbbbbbbbbbbb';
  enroller.enroll(nodePod(newUid, 'fresh', 'BestEffort'));
  await enroller.retryPending();
  t.same(enroller.waiting().map((p) => p.name), ['fresh'], 'no cgroup yet: waiting');
  const freshDir = join(root, 'kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod77777777_8888_4999_8aaa_bbbbbbbbbbbb.slice');
  mkdirSync(freshDir);
  await new Promise((r) => setTimeout(r, 60));
  t.equal(capture.map.get(statSync(freshDir, { bigint: true }).ino), 'fresh', 'enrolled by the retry timer once the kubelet made the cgroup');
  t.same(enroller.waiting(), []);

  enroller.unenroll(nodePod(FIXTURE_PODS.Burstable, 'cart', 'Burstable'));
  await new Promise((r) => setImmediate(r));
  t.same([...capture.map.values()], ['fresh'], 'released');
  t.same(enroller.enrolled().map((e) => e.pod.name), ['fresh']);
});

t.test('a capture refusal is retried; an unenroll while waiting drops the pod', async (t) => {
  const root = tempDir(t, 'cg');
  buildTree('cgroupfs-v2.tree', root);
  const resolver = new KubepodsCgroupResolver(detectKubepodsLayout([{ root, mount: root }]));
  const capture = new Capture();
  capture.refuse = 2;
  const enroller = new PodEnroller({ cgroups: resolver, target: capture, logger: silentLogger, retryIntervalMs: 10 });
  t.teardown(() => enroller.close());
  enroller.enroll(nodePod(FIXTURE_PODS.Guaranteed, 'db', 'Guaranteed'));
  await enroller.retryPending();
  t.equal(capture.map.size, 0, 'refused (twice: on enroll and on the retry)');
  t.same(enroller.waiting().map((p) => p.name), ['db']);
  await new Promise((r) => setTimeout(r, 60));
  t.same([...capture.map.values()], ['db'], 'enrolled on retry');

  enroller.enroll(nodePod('12345678-1234-4234-8234-123456789abc', 'ghost', 'BestEffort'));
  enroller.unenroll(nodePod('12345678-1234-4234-8234-123456789abc', 'ghost', 'BestEffort'));
  t.same(enroller.waiting(), []);
  t.throws(() => resolver.resolvePod('../../x'), { code: 'WEFT_ERR_KUBEPODS_POD_UID' });
  enroller.enroll(nodePod('../../x', 'evil', 'BestEffort'));
  await enroller.retryPending();
  t.same(enroller.waiting(), [], 'a bad UID is dropped, not retried forever');
  t.equal(capture.map.size, 1);
});
