// What each AuthorizationPolicy does right now, for `weft policy status` and the operator page: the workloads
// it selects (Istio's scope: its namespace, or the mesh from the root namespace; matchLabels or all), the
// nodes those run on and whether each node's agent has acknowledged the config version in force there (the
// policy is in force on that node), and the decisions it took part in, summed over the agents'
// weft_authz_decisions_total (since each agent started). Pure: the API handler passes the inputs in.
import type { MeshConfig, Workload } from '../../common/mesh.js';
import type { AuthzEntry } from '../../common/policy.js';
import { scopeSelects } from '../../common/policy/authz.js';
import type { AgentRecord } from '../agents/registry.js';
import type { Sample } from '../telemetry/exposition.js';

export interface AuthzStatus {
  /** "<namespace>/<pod>" of the selected workloads (at most SELECT_LIST), and how many there are */
  selects: string[];
  selected: number;
  /** nodes running a selected workload; inForce: that node's agent acknowledged the config version in force */
  nodes: { node: string; inForce: boolean }[];
  /** decisions the policy took part in, summed over the agents (null: no metrics source) */
  decisions: { allow: number; deny: number; audit: number; dryRunAllow: number; dryRunDeny: number } | null;
}

const SELECT_LIST = 50;

function selects(e: AuthzEntry, w: Workload): boolean {
  return w.meshed && scopeSelects(e.authz.scope, w);
}

export function authzStatus(e: AuthzEntry, cfg: MeshConfig, agents: AgentRecord[], decisions: Sample[] | null): AuthzStatus {
  const chosen = cfg.workloads.filter((w) => selects(e, w));
  const acked = new Map(agents.map((a) => [a.node, !!(a.connected && a.lastReport && a.lastReport.configVersion >= cfg.version && a.lastReport.ack !== 'NACK')]));
  const nodes = [...new Set(chosen.map((w) => w.node))].sort().map((node) => ({ node, inForce: acked.get(node) ?? false }));
  let counts: AuthzStatus['decisions'] = null;
  if (decisions) {
    counts = { allow: 0, deny: 0, audit: 0, dryRunAllow: 0, dryRunDeny: 0 };
    const policy = `${e.namespace}/${e.name}`;
    for (const s of decisions) {
      if (s.labels.policy !== policy) continue;
      const d = s.labels.decision;
      if (d === 'allow') counts.allow += s.value;
      else if (d === 'deny') counts.deny += s.value;
      else if (d === 'audit') counts.audit += s.value;
      else if (d === 'dry_run_allow') counts.dryRunAllow += s.value;
      else if (d === 'dry_run_deny') counts.dryRunDeny += s.value;
    }
  }
  return {
    selects: chosen.slice(0, SELECT_LIST).map((w) => `${w.namespace}/${w.name}`),
    selected: chosen.length,
    nodes,
    decisions: counts,
  };
}
