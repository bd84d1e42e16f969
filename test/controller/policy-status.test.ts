// authzStatus: the workloads an AuthorizationPolicy selects (namespace or mesh-wide scope, matchLabels, only
// meshed pods), the nodes they run on and whether each has acknowledged the config in force, and the
// decisions summed over every agent's weft_authz_decisions_total.
import t from 'tap';
import { authzStatus } from '../../controller/api/policy-status.js';
import type { MeshConfig, Workload } from '../../common/mesh.js';
import type { AuthzEntry } from '../../common/policy.js';
import type { AgentRecord } from '../../controller/agents/registry.js';

const w = (ns: string, name: string, node: string, labels: Record<string, string>, meshed = true): Workload => ({ uid: name, namespace: ns, name, serviceAccount: 'default', node, ips: ['10.0.0.1'], labels, meshed, hostNetwork: false, mtlsMode: 'PERMISSIVE', workloadName: name });
const cfg = { version: 7, workloads: [w('shop', 'web-1', 'n1', { app: 'web' }), w('shop', 'web-2', 'n2', { app: 'web' }), w('shop', 'db', 'n2', { app: 'db' }), w('other', 'web-x', 'n3', { app: 'web' }), w('shop', 'web-off', 'n3', { app: 'web' }, false)] } as unknown as MeshConfig;
const entry = (ns: string, meshWide: boolean, matchLabels?: Record<string, string>): AuthzEntry => ({ kind: 'AuthorizationPolicy', key: `AuthorizationPolicy/${ns}/p`, namespace: ns, name: 'p', authz: { action: 'DENY', dryRun: false, rules: [{}], scope: { meshWide, namespace: ns, ...(matchLabels ? { matchLabels } : {}) } } } as AuthzEntry);
const agents: AgentRecord[] = [
  { node: 'n1', connected: true, lastReport: { configVersion: 7, ack: 'ACK' } },
  { node: 'n2', connected: true, lastReport: { configVersion: 6, ack: 'ACK' } },
  { node: 'n3', connected: true, lastReport: { configVersion: 7, ack: 'NACK' } },
] as unknown as AgentRecord[];

t.test('selection, nodes in force, decisions', async (t) => {
  const s = authzStatus(entry('shop', false, { app: 'web' }), cfg, agents, [
    { name: 'weft_authz_decisions_total', labels: { policy: 'shop/p', action: 'DENY', decision: 'deny', node: 'n1' }, value: 3 },
    { name: 'weft_authz_decisions_total', labels: { policy: 'shop/p', action: 'DENY', decision: 'deny', node: 'n2' }, value: 2 },
    { name: 'weft_authz_decisions_total', labels: { policy: 'shop/q', action: 'DENY', decision: 'deny', node: 'n2' }, value: 9 },
    { name: 'weft_authz_decisions_total', labels: { policy: 'shop/p', action: 'DENY', decision: 'dry_run_deny', node: 'n2' }, value: 1 },
  ]);
  t.same(s.selects, ['shop/web-1', 'shop/web-2'], 'its namespace, its labels, meshed pods only');
  t.equal(s.selected, 2);
  t.same(s.nodes, [{ node: 'n1', inForce: true }, { node: 'n2', inForce: false }], 'n2 has not acknowledged version 7 yet');
  t.same(s.decisions, { allow: 0, deny: 5, audit: 0, dryRunAllow: 0, dryRunDeny: 1 }, 'summed over the agents, this policy only');
});

t.test('namespace-wide and mesh-wide scope; no metrics source', async (t) => {
  t.same(authzStatus(entry('shop', false), cfg, agents, null).selects, ['shop/web-1', 'shop/web-2', 'shop/db']);
  const mesh = authzStatus(entry('weft-system', true, { app: 'web' }), cfg, agents, null);
  t.same(mesh.selects, ['shop/web-1', 'shop/web-2', 'other/web-x'], 'the root namespace: every namespace');
  t.same(mesh.nodes.find((n) => n.node === 'n3'), { node: 'n3', inForce: false }, 'a NACKing node is not in force');
  t.equal(mesh.decisions, null, 'null, not zero, when the controller has no metrics');
});
