// weft.io/fail-mode on a Namespace: checked when applied (Namespace only, closed|open), carried to its
// pods' workloads, and across the config stream to the agents, whose capture reads it (failOpen).
import t from 'tap';

import type { Workload } from '../../common/mesh.js';
import { checkFailModeAnnotation } from '../../controller/store/semantics/fail-mode.js';
import type { KubeObject } from '../../controller/sources/types.js';
import { MtlsIndex, workloadOf } from '../../controller/translate/objects.js';
import { desiredFromMesh } from '../../agent/redirect/desired.js';
import { loadMeshProto } from '../../proto/load.js';
import { workloadPiece } from '../../proto/wire-encode.js';
import { runningPod } from '../helpers/kube-objects.js';

const ns = (annotations?: Record<string, string>): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', ...(annotations ? { annotations } : {}) } });
const pod = runningPod;

t.test('checked when applied: a Namespace setting, closed or open', async (t) => {
  t.doesNotThrow(() => checkFailModeAnnotation(ns({ 'weft.io/fail-mode': 'open' }), 'Namespace shop'));
  t.doesNotThrow(() => checkFailModeAnnotation(ns({ 'weft.io/fail-mode': 'closed' }), 'Namespace shop'));
  t.doesNotThrow(() => checkFailModeAnnotation(ns(), 'Namespace shop'));
  t.throws(() => checkFailModeAnnotation(ns({ 'weft.io/fail-mode': 'ajar' }), 'Namespace shop'), /Namespace shop, field metadata\.annotations\.weft\.io\/fail-mode: "ajar" is not supported: use "closed" or "open"/);
  t.throws(() => checkFailModeAnnotation(pod({ 'weft.io/fail-mode': 'open' }), 'Pod shop/p'), /Pod shop\/p, field metadata\.annotations\.weft\.io\/fail-mode: the fail mode is set per namespace: annotate the Namespace shop instead/);
});

t.test('carried to the namespace\'s workloads and to capture', async (t) => {
  const ctx = (nsAnn: Record<string, string> | undefined) => ({ opts: { trustDomain: 'cluster.local', rootNamespace: 'weft-system' }, nsLabels: () => ({ 'weft.io/mesh': 'enabled' }), nsAnnotations: () => nsAnn, mtls: new MtlsIndex([], 'weft-system') });
  t.equal(workloadOf(pod(), ctx(undefined))?.failMode, undefined, 'closed by default');
  t.equal(workloadOf(pod(), ctx({ 'weft.io/fail-mode': 'closed' }))?.failMode, undefined, 'closed');
  const w = workloadOf(pod(), ctx({ 'weft.io/fail-mode': 'open' }))!;
  t.equal(w.failMode, 'open', 'open');
  const config = { version: 1, trustDomain: 'cluster.local', nodes: [], workloads: [w], services: [], policies: [] };
  const { desired } = desiredFromMesh(config, 'n1', { resolve: () => ({ path: '/x', id: 7n }) });
  t.equal(desired.pods[0]!.failOpen, true, 'capture enrols the pod with failOpen');
});

t.test('across the config stream', async (t) => {
  const decode = loadMeshProto().weft.v1.MeshController.service.StreamConfig.responseDeserialize as (b: Buffer) => unknown;
  const w: Workload = { uid: 'u1', namespace: 'shop', name: 'p', serviceAccount: 'default', node: 'n1', ips: ['10.0.0.1'], labels: {}, meshed: true, hostNetwork: false, mtlsMode: 'PERMISSIVE', workloadName: 'p', failMode: 'open' };
  const msg = decode(workloadPiece(w, true)) as { upsertWorkloads: Array<{ failMode: string }> };
  t.equal(msg.upsertWorkloads[0]!.failMode, 'open');
  const { failMode: _omit, ...closed } = w;
  t.equal((decode(workloadPiece(closed, true)) as { upsertWorkloads: Array<{ failMode: string }> }).upsertWorkloads[0]!.failMode, '', 'absent: closed');
});
