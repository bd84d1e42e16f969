// Incremental translation equals the full translation after every kind of change; change sets name what
// changed; the update encoder's chunks decode (through proto-loader, as an agent does) to each node's view,
// deltas chained from any kept version land on the same config, and objects are encoded once.
import t from 'tap';

import { silentLogger } from '../../common/log.js';
import type { MeshConfig } from '../../common/mesh.js';
import { UpdateEncoder, type EncodedUpdate } from '../../controller/grpc/update-encoder.js';
import type { KubeObject } from '../../controller/sources/types.js';
import { BUILTIN_KINDS, KindRegistry } from '../../controller/store/kinds.js';
import { ObjectStore } from '../../controller/store/object-store.js';
import { translate } from '../../controller/translate/mesh-config.js';
import { ConfigPublisher } from '../../controller/translate/publisher.js';
import { applyConverted, UpdateAssembler } from '../../proto/delta.js';
import { loadMeshProto } from '../../proto/load.js';
import type { ConfigUpdate__Output } from '../../proto/generated/weft/v1/ConfigUpdate.js';

const opts = { trustDomain: 'cluster.local', rootNamespace: 'weft-system' };
const newStore = () => new ObjectStore(new KindRegistry(BUILTIN_KINDS), silentLogger);

const ns = (name: string, meshed: boolean): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, ...(meshed ? { labels: { 'weft.io/mesh': 'enabled' } } : {}) } });
const pod = (name: string, namespace: string, node: string, ip: string, labels: Record<string, string>, ready = true): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace, uid: `uid-${namespace}-${name}`, labels },
  spec: { nodeName: node, serviceAccountName: labels.app ?? 'default', containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080 }] }] },
  status: { phase: 'Running', podIP: ip, hostIP: `10.99.0.${node.slice(-1)}`, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
});
const svc = (name: string, namespace: string, ip: string, selector?: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace },
  spec: { clusterIP: ip, ...(selector ? { selector } : {}), ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
});
const slice = (svcName: string, namespace: string, ips: string[], suffix = 'a'): KubeObject => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: `${svcName}-${suffix}`, namespace, labels: { 'kubernetes.io/service-name': svcName } },
  addressType: 'IPv4',
  endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true } })),
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
});
const node = (name: string, ip: string): KubeObject => ({ apiVersion: 'v1', kind: 'Node', metadata: { name }, status: { addresses: [{ type: 'InternalIP', address: ip }] } });
const peerAuth = (name: string, namespace: string, mode: string, selector?: Record<string, string>): KubeObject => ({
  apiVersion: 'weft.io/v1alpha1',
  kind: 'PeerAuthentication',
  metadata: { name, namespace },
  spec: { ...(selector ? { selector: { matchLabels: selector } } : {}), mtls: { mode } },
});

const withoutVersion = (c: MeshConfig) => ({ ...c, version: 0 });

function seed(s: ObjectStore): void {
  for (const o of [
    ns('shop', true),
    ns('back', true),
    ns('plain', false),
    ns('weft-system', false),
    node('node-1', '10.99.0.1'),
    pod('web-1', 'shop', 'node-1', '10.98.1.10', { app: 'web', tier: 'front' }),
    pod('web-2', 'shop', 'node-2', '10.98.2.10', { app: 'web', tier: 'front' }),
    pod('db-1', 'back', 'node-2', '10.98.2.20', { app: 'db' }),
    pod('lonely', 'plain', 'node-1', '10.98.1.30', { app: 'lonely' }),
    svc('web', 'shop', '10.97.0.1', { app: 'web' }),
    svc('db', 'back', '10.97.0.2', { app: 'db' }),
    slice('db', 'back', ['10.98.2.20']),
    svc('front', 'shop', '10.97.0.3', { tier: 'front', app: 'web' }),
  ]) {
    s.upsert(o, 'test');
  }
}

t.test('incremental translation equals the full translation after every kind of change', async (t) => {
  const s = newStore();
  seed(s);
  const pub = new ConfigPublisher(s, { ...opts, debounceMs: 10_000 });
  t.same(withoutVersion(pub.current()), withoutVersion(translate(s, opts, 0)), 'first build');
  const steps: [string, () => void, (c: ReturnType<ConfigPublisher['changesSince']>) => void][] = [
    ['pod relabelled out of a selector', () => s.upsert(pod('web-2', 'shop', 'node-2', '10.98.2.10', { app: 'other' }), 'test'), (c) => {
      t.same([...c!.workloads], ['uid-shop-web-2']);
      t.same([...c!.services].sort(), ['shop/front', 'shop/web']);
    }],
    ['pod not ready', () => s.upsert(pod('web-1', 'shop', 'node-1', '10.98.1.10', { app: 'web', tier: 'front' }, false), 'test'), (c) => {
      t.same([...c!.workloads], [], 'readiness is not part of the workload');
      t.same([...c!.services].sort(), ['shop/front', 'shop/web']);
    }],
    ['pod IP moves under an EndpointSlice', () => s.upsert(pod('db-1', 'back', 'node-1', '10.98.2.20', { app: 'db' }), 'test'), (c) => t.ok(c!.services.has('back/db'), 'slice endpoint node comes from the pod')],
    ['slice replaced', () => s.upsert(slice('db', 'back', ['10.98.2.20', '10.98.2.21']), 'test'), (c) => t.same([...c!.services], ['back/db'])],
    ['second slice then delete the first', () => {
      s.upsert(slice('db', 'back', ['10.98.2.22'], 'b'), 'test');
      s.delete({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', namespace: 'back', name: 'db-a' }, 'test');
    }, () => undefined],
    ['all slices gone: back to the selector', () => s.delete({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', namespace: 'back', name: 'db-b' }, 'test'), () => undefined],
    ['service selector changed', () => s.upsert(svc('web', 'shop', '10.97.0.1', { app: 'other' }), 'test'), (c) => t.same([...c!.services], ['shop/web'])],
    ['namespace meshed', () => s.upsert(ns('plain', true), 'test'), (c) => t.same([...c!.workloads], ['uid-plain-lonely'])],
    ['mesh-wide STRICT', () => s.upsert(peerAuth('default', 'weft-system', 'STRICT'), 'test'), (c) => t.equal(c!.workloads.size, 4)],
    ['workload-level DISABLE', () => s.upsert(peerAuth('db', 'back', 'DISABLE', { app: 'db' }), 'test'), (c) => t.same([...c!.workloads], ['uid-back-db-1'])],
    ['node object added', () => s.upsert(node('node-2', '10.99.0.22'), 'test'), (c) => t.same([...c!.nodes], ['node-2'])],
    ['pod deleted', () => s.delete({ apiVersion: 'v1', kind: 'Pod', namespace: 'shop', name: 'web-1' }, 'test'), (c) => {
      t.same([...c!.workloads], ['uid-shop-web-1']);
      t.ok(c!.services.has('shop/front'));
    }],
    ['service deleted', () => s.delete({ apiVersion: 'v1', kind: 'Service', namespace: 'shop', name: 'front' }, 'test'), (c) => t.same([...c!.services], ['shop/front'])],
    ['new pod joins a selector', () => s.upsert(pod('web-3', 'shop', 'node-1', '10.98.1.11', { app: 'other' }), 'test'), (c) => t.ok(c!.services.has('shop/web'))],
  ];
  for (const [name, change, check] of steps) {
    const before = pub.version;
    change();
    pub.flush();
    t.not(pub.version, before, `${name}: a new version`);
    t.same(withoutVersion(pub.current()), withoutVersion(translate(s, opts, 0)), `${name}: same as the full translation`);
    check(pub.changesSince(before));
  }
  const v = pub.version;
  s.upsert(pod('web-3', 'shop', 'node-1', '10.98.1.11', { app: 'other' }), 'test');
  pub.flush();
  t.equal(pub.version, v, 'an unchanged object makes no version');
  t.equal(pub.changesSince(12345), undefined, 'an unknown version has no delta (snapshot)');
  pub.close();
});

const proto = loadMeshProto();
const decode = (b: Buffer) => proto.weft.v1.MeshController.service.StreamConfig.responseDeserialize(b) as ConfigUpdate__Output;

function receive(base: MeshConfig | undefined, chunks: Buffer[]): { config: MeshConfig; bundle: string } {
  const asm = new UpdateAssembler();
  let done: ReturnType<UpdateAssembler['add']>;
  for (const [i, c] of chunks.entries()) {
    done = asm.add(decode(c));
    if (i < chunks.length - 1) t.equal(done, undefined, 'nothing applied before the last chunk');
  }
  const r = applyConverted(base, done!.head, done!.entries);
  return { config: r.config, bundle: r.trustBundlePem };
}

const chunksOf = (u: EncodedUpdate) => Array.from({ length: u.count }, (_, i) => u.chunk(i));

const sortConfig = (c: MeshConfig): MeshConfig => {
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return {
    ...c,
    nodes: [...c.nodes].sort((a, b) => cmp(a.name, b.name)),
    workloads: [...c.workloads].sort((a, b) => cmp(a.uid, b.uid)),
    services: [...c.services].sort((a, b) => cmp(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`)),
    policies: [...c.policies].sort((a, b) => cmp(a.key, b.key)),
  };
};

t.test('encoder: chunked snapshots and chained deltas decode to each node view; encode once', async (t) => {
  const s = newStore();
  seed(s);
  for (let i = 0; i < 300; i++) s.upsert(pod(`bulk-${i}`, 'shop', `node-${(i % 3) + 1}`, `10.98.3.${i % 250}`, { app: `bulk-${i}`, extra: 'x'.repeat(40) }), 'test');
  const pub = new ConfigPublisher(s, { ...opts, debounceMs: 10_000 });
  const enc = new UpdateEncoder(pub, 4096);

  const snap1 = enc.update('node-1', undefined, 'BUNDLE-1')!;
  t.ok(snap1.snapshot);
  t.ok(snap1.count > 3, `cut into chunks (${snap1.count})`);
  for (const c of chunksOf(snap1)) t.ok(c.length < 4096 + 2048, 'each chunk near the limit');
  t.equal(chunksOf(snap1).reduce((n, c) => n + c.length, 0), snap1.bytes, 'bytes counted right');
  let agent1 = receive(undefined, chunksOf(snap1));
  t.same(sortConfig(agent1.config), sortConfig(pub.configFor('node-1')), 'node-1 snapshot = its view (labels only for its own workloads)');
  t.equal(agent1.bundle, 'BUNDLE-1');
  t.same(agent1.config.workloads.find((w) => w.name === 'web-2')!.labels, { app: 'web' }, 'a workload on another node comes with only the labels Istio\'s metrics read');
  t.same(agent1.config.workloads.find((w) => w.name === 'web-1')!.labels, { app: 'web', tier: 'front' });

  const afterFirst = enc.encodings;
  const snap2 = enc.update('node-2', undefined, 'BUNDLE-1')!;
  const local = (n: string) => pub.current().workloads.filter((w) => w.node === n).length;
  t.equal(enc.encodings - afterFirst, local('node-1') + local('node-2'), "a second node costs only node-2's workloads with labels and node-1's without");
  t.same(sortConfig(receive(undefined, chunksOf(snap2)).config), sortConfig(pub.configFor('node-2')));
  const afterSecond = enc.encodings;
  t.same(sortConfig(receive(undefined, chunksOf(enc.update('node-9', undefined, 'BUNDLE-1')!)).config), sortConfig(pub.configFor('node-9')));
  t.equal(enc.encodings, afterSecond, 'a third node without workloads costs no encoding at all');

  // three versions; agent 1 stays at the first, then catches up with one delta
  const v0 = pub.version;
  s.upsert(pod('web-1', 'shop', 'node-1', '10.98.1.10', { app: 'web', tier: 'front', v: '2' }), 'test');
  pub.flush();
  s.delete({ apiVersion: 'v1', kind: 'Pod', namespace: 'shop', name: 'bulk-7' }, 'test');
  s.upsert(svc('extra', 'shop', '10.97.0.9', { app: 'web' }), 'test');
  pub.flush();
  s.upsert(node('node-3', '10.99.0.3'), 'test');
  pub.flush();
  const before = enc.encodings;
  const d = enc.update('node-1', { version: v0, bundle: 'BUNDLE-1' }, 'BUNDLE-2')!;
  t.notOk(d.snapshot, 'a delta from a kept version');
  t.ok(enc.encodings - before <= 6, `only changed objects encoded (${enc.encodings - before})`);
  agent1 = receive(agent1.config, chunksOf(d));
  t.same(sortConfig(agent1.config), sortConfig(pub.configFor('node-1')), 'the delta lands on the current view');
  t.equal(agent1.bundle, 'BUNDLE-2', 'the new trust bundle travels with it');

  const shared = enc.update('node-2', { version: v0, bundle: 'BUNDLE-1' }, 'BUNDLE-2');
  const shared3 = enc.update('node-3', { version: v0, bundle: 'BUNDLE-1' }, 'BUNDLE-2');
  t.equal(shared, shared3, 'nodes with no changed workload of their own share the same encoded delta');
  t.not(shared, d, 'node-1 had its own workload changed (labels): its own bytes');
  t.equal(enc.update('node-1', { version: pub.version, bundle: 'BUNDLE-2' }, 'BUNDLE-2'), undefined, 'up to date: nothing to send');
  t.ok(enc.update('node-1', { version: 42, bundle: 'BUNDLE-2' }, 'BUNDLE-2')!.snapshot, 'an unknown base gets a snapshot');
  pub.close();
});

t.test('a chunk that does not convert fails the whole update once, after its last chunk', async (t) => {
  const asm = new UpdateAssembler();
  const bad = { version: 5, snapshot: true, baseVersion: 0, more: true, upsertPolicies: [{ key: 'k', json: '{nope' }] } as unknown as ConfigUpdate__Output;
  const empty = { upsertNodes: [], removeNodes: [], upsertWorkloads: [], removeWorkloads: [], upsertServices: [], removeServices: [], upsertPolicies: [], removePolicies: [] };
  t.equal(asm.add({ ...empty, ...bad } as ConfigUpdate__Output), undefined);
  t.throws(() => asm.add({ ...empty, version: 5, snapshot: true, baseVersion: 0, more: false } as unknown as ConfigUpdate__Output), /JSON|Unexpected|position/);
  t.equal(asm.add({ ...empty, version: 6, snapshot: true, baseVersion: 0, more: false } as unknown as ConfigUpdate__Output)!.head.version, 6, 'the next update starts clean');
});
