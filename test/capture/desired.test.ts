// The desired capture state of a node, computed from the mesh configuration (no kernel involved).
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { MeshConfig, Workload } from '../../common/mesh.js';
import { SandboxCgroupResolver, type CgroupResolver } from '../../agent/redirect/cgroup-resolver.js';
import { desiredFromMesh } from '../../agent/redirect/desired.js';

const wl = (uid: string, over: Partial<Workload> = {}): Workload => ({
  uid,
  namespace: 'shop',
  name: uid,
  serviceAccount: 'default',
  node: 'node-a',
  ips: [],
  labels: {},
  meshed: true,
  hostNetwork: false,
  mtlsMode: 'PERMISSIVE',
  workloadName: uid,
  ...over,
});

const config: MeshConfig = {
  version: 1,
  trustDomain: 'cluster.local',
  nodes: [],
  workloads: [
    wl('a', { ips: ['10.98.1.2', 'fd00:98:1::2'], mtlsMode: 'STRICT' }),
    wl('b', { ips: ['10.98.2.2'], node: 'node-b' }),
    wl('c', { ips: ['10.98.1.3'], meshed: false }),
    wl('d', { ips: ['10.98.1.4'], hostNetwork: true }),
    wl('e', { ips: ['10.98.1.5'] }),
  ],
  services: [
    {
      namespace: 'shop',
      name: 'web',
      clusterIPs: ['10.97.0.10', 'fd00:97::10'],
      ports: [
        { port: 80, targetPort: 8080, protocol: 'TCP' },
        { port: 53, targetPort: 53, protocol: 'UDP' },
      ],
      endpoints: [
        { ip: '10.98.1.2', node: 'node-a', workloadUid: 'a', ready: true },
        { ip: '10.98.2.2', node: 'node-b', workloadUid: 'b', ready: true },
        { ip: '10.98.1.3', node: 'node-a', workloadUid: 'c', ready: true },
      ],
    },
    { namespace: 'shop', name: 'headless', clusterIPs: [], ports: [{ port: 9000, targetPort: 9000, protocol: 'TCP' }], endpoints: [{ ip: 'fd00:98:1::2', node: 'node-a', ready: true }] },
  ],
  policies: [],
};

const ids: Record<string, bigint> = { a: 101n, b: 102n, c: 103n, d: 104n };
const fake: CgroupResolver = { resolve: (w) => (ids[w.uid] ? { path: `/cg/pod-${w.uid}`, id: ids[w.uid]! } : undefined) };

t.test('enrolled pods: meshed, not host network, on this node, cgroup found', async (t) => {
  const { desired, unresolved } = desiredFromMesh(config, 'node-a', fake);
  t.same(desired.pods, [{ cgroupId: 101n, uid: 'a', mode: 'STRICT' }]);
  t.same(unresolved.map((w) => w.uid), ['e'], 'a meshed pod whose cgroup is missing is reported, not enrolled');
});

t.test('destinations: every ClusterIP:port (TCP) and meshed pod IP:targetPort', async (t) => {
  const { desired } = desiredFromMesh(config, 'node-a', fake);
  const got = desired.destinations.map((d) => `${d.ip}|${d.port}`).sort();
  t.same(got, ['10.97.0.10|80', '10.98.1.2|8080', '10.98.2.2|8080', 'fd00:97::10|80', 'fd00:98:1::2|9000'].sort());
});

t.test('sandbox layout: <root>/pod-<uid>, id = inode; unsafe uids never resolve', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'weft-cg-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'pod-a'));
  const r = new SandboxCgroupResolver(root);
  t.same(r.resolve(wl('a')), { path: join(root, 'pod-a'), id: statSync(join(root, 'pod-a'), { bigint: true }).ino });
  t.equal(r.resolve(wl('missing')), undefined);
  t.equal(r.resolve(wl('../../etc')), undefined);
});
