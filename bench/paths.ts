// The paths a request can take from a client pod to the same server pod, all in one sandbox:
//   direct   the non-meshed client straight to the Service (the floor)
//   weft     the meshed client; eBPF sends it to the node proxy (same node: one plaintext hop;
//            cross node: the source node's proxy, mTLS, the destination node's proxy)
//   nginx    the non-meshed client with nginx as its sidecar, reached through iptables REDIRECT
//   haproxy  the same with HAProxy
import type { PodPlan } from '../sandbox/plan.js';
import type { ScenarioId } from './scenarios.js';
import type { SidecarRedirect } from './peers.js';
import { sidecarRules } from './peers.js';
import type { Scope, Topology } from './topology.js';

export type PathId = 'direct' | 'weft' | 'nginx' | 'haproxy';
export const PATH_IDS: PathId[] = ['direct', 'weft', 'nginx', 'haproxy'];

export interface BenchPath {
  id: PathId;
  scope: Scope;
  label: string;
  client: PodPlan;
  /** the ClusterIP the path's client calls (meshed servers for Weft, the servers outside the mesh otherwise) */
  vip: string;
  /** set when the path cannot be measured in this run, with the reason */
  unavailable: string | undefined;
  /** scenarios this path cannot carry, with the reason */
  unsupported: Partial<Record<ScenarioId, string>>;
  /** root pids of the proxy processes on this path (none for direct) */
  proxyPids(): number[];
  /** route the client's connections through this path */
  activate(): Promise<void>;
}

export interface PathDeps {
  topo: Topology;
  redirect: SidecarRedirect;
  /** pid of the running sidecar, or the reason it is not running */
  sidecar: Record<'nginx' | 'haproxy', number | string>;
}

export function pathLabel(id: PathId, scope: Scope): string {
  switch (id) {
    case 'direct':
      return 'direct (no mesh)';
    case 'weft':
      return scope === 'same-node' ? 'Weft, plaintext (1 hop)' : 'Weft, mTLS (2 hops)';
    case 'nginx':
      return 'nginx sidecar (1 hop)';
    case 'haproxy':
      return 'HAProxy sidecar (1 hop)';
  }
}

export function buildPaths(d: PathDeps, scopes: Scope[], ids: PathId[]): BenchPath[] {
  const { topo } = d;
  const vips = { 'same-node': topo.plainServers['same-node'].vip, 'cross-node': topo.plainServers['cross-node'].vip };
  const out: BenchPath[] = [];
  for (const scope of scopes) {
    for (const id of ids) {
      const base = {
        id,
        scope,
        label: pathLabel(id, scope),
        unsupported: id === 'nginx' ? { tcp: 'Debian\'s nginx has no stream (L4) module unless libnginx-mod-stream is installed' } : {},
      };
      if (id === 'direct') {
        out.push({ ...base, client: topo.plainClient, vip: vips[scope], unavailable: undefined, proxyPids: () => [], activate: () => d.redirect.clear() });
      } else if (id === 'weft') {
        const nodes = scope === 'same-node' ? ['node-1'] : ['node-1', 'node-2'];
        const pids = () => nodes.map((n) => topo.agentPid(n)).filter((p): p is number => p !== undefined);
        out.push({ ...base, client: topo.meshedClient, vip: topo.servers[scope].vip, unavailable: topo.meshUnavailable, proxyPids: pids, activate: async () => {} });
      } else {
        const sc = d.sidecar[id];
        out.push({
          ...base,
          client: topo.plainClient,
          vip: vips[scope],
          unavailable: typeof sc === 'string' ? sc : undefined,
          proxyPids: () => (typeof sc === 'number' ? [sc] : []),
          activate: () => d.redirect.redirectTo(sidecarRules(id, vips)),
        });
      }
    }
  }
  return out;
}
