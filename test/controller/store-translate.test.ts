// Object store validation and the store -> MeshConfig translation, and the delta encoding round trip.
import t from 'tap';

import { silentLogger } from '../../common/log.js';
import { applyUpdate, deltaUpdate, snapshotUpdate } from '../../proto/delta.js';
import type { KubeObject } from '../../controller/sources/types.js';
import { BUILTIN_KINDS, KindRegistry } from '../../controller/store/kinds.js';
import { ObjectStore } from '../../controller/store/object-store.js';
import { translate } from '../../controller/translate/mesh-config.js';
import { loadCrdSchemas } from '../../controller/store/crd-schemas.js';
import { ConfigPublisher } from '../../controller/translate/publisher.js';
import type { ConfigUpdate__Output } from '../../proto/generated/weft/v1/ConfigUpdate.js';

const opts = { trustDomain: 'cluster.local', rootNamespace: 'weft-system' };
const newStore = () => new ObjectStore(new KindRegistry(BUILTIN_KINDS), silentLogger);

const ns = (name: string, meshed: boolean): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, ...(meshed ? { labels: { 'weft.io/mesh': 'enabled' } } : {}) } });
const pod = (name: string, namespace: string, node: string, ip: string, labels: Record<string, string>, extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace, uid: `uid-${name}`, labels, ...((extra.metadata as object) ?? {}) },
  spec: { nodeName: node, serviceAccountName: labels.app ?? 'default', containers: [{ name: 'c' }], ...((extra.spec as object) ?? {}) },
  status: { phase: 'Running', podIP: ip, hostIP: `10.99.0.${node.slice(-1)}` },
});

t.test('validation names object and field; nothing is half-applied', async (t) => {
  const s = newStore();
  const cases: [KubeObject, RegExp][] = [
    [{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'a' }, spec: { containers: [] } } as KubeObject, /Pod a\/p, field spec\.containers: must have at least 1 item/],
    [{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'Bad_Name' }, spec: { containers: [{ name: 'c' }] } } as KubeObject, /Pod Bad_Name, field metadata\.name/],
    [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 's', labels: { app: 7 as unknown as string } }, spec: { ports: [] } } as KubeObject, /Service s, field metadata\.labels\.app: must be a string/],
    [{ apiVersion: 'v2', kind: 'Service', metadata: { name: 's' } } as KubeObject, /Service s, field apiVersion\/kind: "v2" Service is not a kind Weft reads/],
    [{ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'e' }, addressType: 'IPv4', endpoints: [] } as KubeObject, /kubernetes\.io\/service-name: is required/],
    [{ apiVersion: 'weft.io/v1alpha1', kind: 'TrafficPolicy', metadata: { name: 'tp', namespace: 'a' }, spec: { targetRef: { kind: 'Service', name: 'x' }, timeouts: { request: 'soon' } } } as KubeObject, /TrafficPolicy a\/tp, field spec\.timeouts\.request: must match/],
    [{ apiVersion: 'weft.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'ap', namespace: 'a' }, spec: { action: 'ALLOW', rulez: [] } } as KubeObject, /AuthorizationPolicy a\/ap, field spec\.rulez: is not a known field/],
    [{ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'r', namespace: 'a' }, spec: { rules: [{ backendRefs: [{ name: 'x', port: 70000 }] }] } } as KubeObject, /HTTPRoute a\/r, field spec\.rules\[0\]\.backendRefs\[0\]\.port: must be <= 65535/],
  ];
  for (const [obj, re] of cases) t.throws(() => s.upsert(obj, 'test'), { code: 'WEFT_ERR_CONFIG', message: re }, re.source);
  t.equal(s.size(), 0, 'nothing stored');

  // replaceAll: a refused object keeps its last good version; the valid ones apply; missing ones go
  const good = pod('web-1', 'shop', 'node-1', '10.98.1.10', { app: 'web' });
  s.replaceAll(['Pod'], [good, pod('gone', 'shop', 'node-1', '10.98.1.11', {})], 'dir');
  const broken = { ...good, spec: { containers: 'nope' } } as KubeObject;
  const r = s.replaceAll(['Pod'], [broken, pod('new', 'shop', 'node-2', '10.98.2.11', {})], 'dir');
  t.equal(r.refused.length, 1);
  t.match(r.refused[0]!.error.message, /Pod shop\/web-1, field spec\.containers/);
  t.ok(s.get('v1', 'Pod', 'shop', 'web-1'), 'last good web-1 stays');
  t.notOk(s.get('v1', 'Pod', 'shop', 'gone'), 'an object no longer listed is removed');
  t.ok(s.get('v1', 'Pod', 'shop', 'new'));
  t.same([...s.serviceAccountsOnNode('node-1')], ['shop/web']);
});

t.test('translation: meshed flag, mTLS precedence, EndpointSlices, workload names', async (t) => {
  const s = newStore();
  const objs: KubeObject[] = [
    ns('shop', true),
    ns('plain', false),
    ns('weft-system', false),
    pod('web-5d9c7f-abcde', 'shop', 'node-1', '10.98.1.10', { app: 'web', 'pod-template-hash': '5d9c7f' }, { metadata: { ownerReferences: [{ kind: 'ReplicaSet', name: 'web-5d9c7f' }] } }),
    pod('db-0', 'shop', 'node-2', '10.98.2.10', { app: 'db', tier: 'data' }, { metadata: { ownerReferences: [{ kind: 'StatefulSet', name: 'db' }] } }),
    pod('host', 'shop', 'node-2', '10.99.0.2', { app: 'host' }, { spec: { hostNetwork: true } }),
    pod('legacy', 'plain', 'node-1', '10.98.1.20', { app: 'legacy' }),
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'done', namespace: 'shop' }, spec: { nodeName: 'node-1', containers: [{ name: 'c' }] }, status: { phase: 'Succeeded' } },
    { apiVersion: 'weft.io/v1alpha1', kind: 'PeerAuthentication', metadata: { name: 'mesh', namespace: 'weft-system' }, spec: { mtls: { mode: 'STRICT' } } },
    { apiVersion: 'weft.io/v1alpha1', kind: 'PeerAuthentication', metadata: { name: 'ns', namespace: 'plain' }, spec: { mtls: { mode: 'DISABLE' } } },
    { apiVersion: 'weft.io/v1alpha1', kind: 'PeerAuthentication', metadata: { name: 'db', namespace: 'shop' }, spec: { selector: { matchLabels: { tier: 'data' } }, mtls: { mode: 'PERMISSIVE' } } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'db', namespace: 'shop' }, spec: { clusterIPs: ['10.97.0.20'], clusterIP: '10.97.0.20', selector: { app: 'db' }, ports: [{ name: 'pg', port: 5432, targetPort: 'pg' }] } },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'db-abc', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'db' } },
      addressType: 'IPv4',
      ports: [{ name: 'pg', port: 15432 }],
      endpoints: [
        { addresses: ['10.98.2.10'], nodeName: 'node-2', conditions: { ready: true }, targetRef: { kind: 'Pod', uid: 'uid-db-0' } },
        { addresses: ['10.98.2.99'], nodeName: 'node-2', conditions: { ready: false } },
      ],
    },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'headless', namespace: 'shop' }, spec: { clusterIP: 'None', selector: { app: 'web' }, ports: [{ port: 80 }] } },
  ];
  for (const o of objs) s.upsert(o, 'test');
  const cfg = translate(s, opts, 42);
  const w = (name: string) => cfg.workloads.find((x) => x.name === name)!;
  t.equal(cfg.version, 42);
  t.notOk(cfg.workloads.some((x) => x.name === 'done'), 'finished pods are not workloads');
  t.equal(w('web-5d9c7f-abcde').workloadName, 'web', 'ReplicaSet hash stripped');
  t.equal(w('db-0').workloadName, 'db');
  t.equal(w('web-5d9c7f-abcde').meshed, true);
  t.equal(w('host').meshed, false, 'host network is never meshed');
  t.equal(w('legacy').meshed, false, 'namespace without the label');
  t.equal(w('web-5d9c7f-abcde').mtlsMode, 'STRICT', 'mesh-wide from the root namespace');
  t.equal(w('db-0').mtlsMode, 'PERMISSIVE', 'workload selector beats mesh-wide');
  t.equal(w('legacy').mtlsMode, 'DISABLE', 'namespace-wide beats mesh-wide');
  const db = cfg.services.find((x) => x.name === 'db')!;
  t.same(db.ports, [{ name: 'pg', port: 5432, targetPort: 15432, protocol: 'TCP' }], 'named port from the slice');
  t.same(db.endpoints, [
    { ip: '10.98.2.10', node: 'node-2', workloadUid: 'uid-db-0', ready: true },
    { ip: '10.98.2.99', node: 'node-2', ready: false },
  ]);
  const headless = cfg.services.find((x) => x.name === 'headless')!;
  t.same(headless.clusterIPs, [], 'headless has no VIP');
  t.same(headless.endpoints.map((e) => e.ip), ['10.98.1.10']);
  t.same(cfg.nodes.map((n) => n.name), ['node-1', 'node-2']);
  t.same(cfg.policies, [], "PeerAuthentication is compiled into workloads (mtlsMode), not sent as an entry");
});

t.test('delta encoding round trip and base-version check', async (t) => {
  const s = newStore();
  s.upsert(ns('shop', true), 't');
  s.upsert(pod('a', 'shop', 'node-1', '10.98.1.1', { app: 'a' }), 't');
  s.upsert(pod('b', 'shop', 'node-1', '10.98.1.2', { app: 'b' }), 't');
  const v1 = translate(s, opts, 1);
  s.delete({ apiVersion: 'v1', kind: 'Pod', namespace: 'shop', name: 'a' }, 't');
  s.upsert(pod('c', 'shop', 'node-2', '10.98.2.1', { app: 'c' }), 't');
  s.upsert({ apiVersion: 'weft.io/v1alpha1', kind: 'PeerAuthentication', metadata: { name: 'x', namespace: 'shop' }, spec: { mtls: { mode: 'STRICT' } } }, 't');
  const v2 = translate(s, opts, 2);
  const wire = (u: object) => JSON.parse(JSON.stringify(u)) as ConfigUpdate__Output;
  const snap = applyUpdate(undefined, wire(snapshotUpdate(v1, 'B1')));
  t.same(snap.config, v1);
  const d = deltaUpdate(v1, v2, 'B1', 'B1')!;
  t.same(d.removeWorkloads, ['uid-a']);
  t.equal(d.upsertWorkloads!.length, 2, 'b changed (mtls STRICT) and c is new');
  const next = applyUpdate(snap.config, wire(d));
  t.same(
    next.config.workloads.map((w) => w.uid).sort(),
    v2.workloads.map((w) => w.uid).sort(),
  );
  t.same(next.config.policies, v2.policies);
  t.equal(deltaUpdate(v2, { ...v2, version: 3 }, 'B1', 'B1'), undefined, 'nothing visible changed: no update');
  t.throws(() => applyUpdate({ ...v1, version: 7 }, wire(d)), /based on version 1 but this agent holds 7/);
});

t.test('publisher debounces a burst into one version; versions only go up', async (t) => {
  const s = newStore();
  let now = 1000;
  const p = new ConfigPublisher(s, { ...opts, debounceMs: 30, maxDelayMs: 200, now: () => now });
  t.teardown(() => p.close());
  const versions: number[] = [];
  p.onConfig((c) => versions.push(c.version));
  for (let i = 0; i < 20; i++) s.upsert(pod(`p${i}`, 'shop', 'node-1', `10.98.1.${i + 1}`, {}), 't');
  await new Promise((r) => setTimeout(r, 150));
  t.equal(versions.length, 1, 'one version for the burst');
  t.equal(p.current().workloads.length, 20);
  now = 10; // the clock went backwards
  s.delete({ apiVersion: 'v1', kind: 'Pod', namespace: 'shop', name: 'p0' }, 't');
  p.flush();
  t.ok(versions[1]! > versions[0]!, 'still increasing');
});

t.test('publisher: changes go out on the next turn, past the burst they are debounced', async (t) => {
  const s = newStore();
  const p = new ConfigPublisher(s, { ...opts, debounceMs: 60_000, maxDelayMs: 120_000, burst: 2 });
  t.teardown(() => p.close());
  const got: { version: number; waitMs: number }[] = [];
  p.onConfig((c) => got.push({ version: c.version, waitMs: c.waitMs }));
  const turn = () => new Promise((r) => setTimeout(r, 20));
  const v0 = p.version;
  s.upsert(pod('a', 'shop', 'node-1', '10.98.1.1', {}), 't');
  s.upsert(pod('b', 'shop', 'node-1', '10.98.1.2', {}), 't');
  t.equal(got.length, 0, 'not built inside the writer\'s turn');
  await turn();
  t.equal(got.length, 1, 'published at once, not after the 60 s debounce');
  t.equal(p.current().workloads.length, 2, 'one version for the synchronous burst');
  t.ok(got[0]!.waitMs < 50, `waited ${got[0]!.waitMs} ms`);
  t.ok((p.pendingAgeMs(v0) ?? -1) >= 0, 'an agent at the old version has a pending change, with its age');
  t.equal(p.pendingAgeMs(p.version), undefined, 'an agent at the newest version has none');
  s.upsert(pod('c', 'shop', 'node-1', '10.98.1.3', {}), 't');
  await turn();
  t.equal(got.length, 2, 'a second change within the burst: at once too');
  s.upsert(pod('d', 'shop', 'node-1', '10.98.1.4', {}), 't');
  await turn();
  t.equal(got.length, 2, 'past the burst (2 versions in a second) a change waits for the debounce');
  p.flush();
  t.equal(got.length, 3);
  t.ok(got[2]!.version > got[1]!.version && got[1]!.version > got[0]!.version, 'versions only go up');
});

t.test('CRD schemas from manifests replace the built-in ones', async (t) => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'weft-crd-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'trafficpolicy.yaml'),
    `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: trafficpolicies.weft.io }
spec:
  group: weft.io
  names: { kind: TrafficPolicy, plural: trafficpolicies }
  scope: Namespaced
  versions:
    - name: v1alpha1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            apiVersion: { type: string }
            kind: { type: string }
            metadata: { type: object }
            spec:
              type: object
              required: [targetRef]
              properties:
                targetRef: { type: object, properties: { name: { type: string } }, required: [name] }
                timeout: { type: string, pattern: '^[0-9]+s$' }
`,
  );
  const kinds = new KindRegistry(BUILTIN_KINDS);
  t.equal(loadCrdSchemas(dir, kinds, silentLogger), 1);
  const s = new ObjectStore(kinds, silentLogger);
  t.throws(() => s.upsert({ apiVersion: 'weft.io/v1alpha1', kind: 'TrafficPolicy', metadata: { name: 'a', namespace: 'x' }, spec: { targetRef: { name: 'web' }, timeout: '1m' } }, 't'), { message: /TrafficPolicy x\/a, field spec\.timeout: must match \^\[0-9\]\+s\$/ });
  s.upsert({ apiVersion: 'weft.io/v1alpha1', kind: 'TrafficPolicy', metadata: { name: 'a', namespace: 'x' }, spec: { targetRef: { name: 'web' }, timeout: '5s' } }, 't');
  t.equal(s.size(), 1);
});
