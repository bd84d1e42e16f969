// The inspection commands: `weft version`, `weft config dump [node] KIND`, `weft certs`, `weft policy status`.
// Agents are read through their admin endpoint (loopback; a sandbox forwards it, in Kubernetes a
// port-forward is made); the controller through its HTTP API.
import { readFileSync } from 'node:fs';

import { WeftConfigError, WeftError } from '../common/errors.js';
import type { MeshConfig } from '../common/mesh.js';
import { parse, TARGET_HELP, withTarget } from './common.js';
import { paint, stdout, structured, table, type Cell, type Out } from './output.js';
import { getAgentJson, getJson, type AgentTarget, type Target } from './target.js';

export const CLIENT_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function agentsOf(t: Target, node: string | undefined): AgentTarget[] {
  if (!t.agents.length) throw new WeftError('WEFT_ERR_TARGET', `no agents are reachable through ${t.describe}; use a sandbox (--sandbox ID) or Kubernetes (kubeconfig)`);
  if (!node) return t.agents;
  const a = t.agents.find((x) => x.node === node);
  if (!a) throw new WeftConfigError('node', `"${node}" is not a node of ${t.describe}; nodes: ${t.agents.map((x) => x.node).join(', ')}`);
  return [a];
}

// ---------------------------------------------------------------- version
export const VERSION_HELP = `usage: weft version [--client] [-o json|yaml]

The client's version, the controller's, and each agent's (node, version, Node.js, config version in force).

${TARGET_HELP}`;

export async function versionCommand(argv: string[]): Promise<number> {
  const { values, format } = parse('version', argv, { client: { type: 'boolean' } });
  if (values.help) return void process.stdout.write(VERSION_HELP), 0;
  const o = stdout();
  if (values.client) {
    o.write(format === 'table' || format === 'wide' ? `client: weft ${CLIENT_VERSION}\n` : structured(format, { client: CLIENT_VERSION }));
    return 0;
  }
  return withTarget(values, true, async (t) => {
    const ctl = await getJson<{ controller: string; configVersion: number }>(t, '/api/v1/version');
    const agents = await Promise.all(
      t.agents.map((a) =>
        getAgentJson<{ agent: string; node: string; node_version: string; configVersion: number }>(a, '/version').then(
          (v) => ({ node: a.node, version: v.agent, nodejs: v.node_version, configVersion: v.configVersion, error: null as string | null }),
          (e: Error) => ({ node: a.node, version: null, nodejs: null, configVersion: null, error: e.message }),
        ),
      ),
    );
    const all = { client: CLIENT_VERSION, controller: { version: ctl.controller, configVersion: ctl.configVersion }, agents };
    if (format === 'json' || format === 'yaml') return void o.write(structured(format, all)), agents.some((a) => a.error) ? 1 : 0;
    o.write(`client:     weft ${CLIENT_VERSION} (Node.js ${process.version})\ncontroller: weft ${ctl.controller}, config version ${ctl.configVersion}\n`);
    if (agents.length) {
      o.write(
        '\n' +
          table(
            o,
            ['NODE', 'AGENT', 'NODE.JS', 'CONFIG'],
            agents.map((a) => [a.node, a.version ?? { text: 'unreachable', color: 'red' }, a.nodejs ?? '-', a.configVersion === null ? '-' : { text: String(a.configVersion), ...(a.configVersion < ctl.configVersion ? { color: 'yellow' as const } : {}) }]),
          ),
      );
    }
    for (const a of agents) if (a.error) process.stderr.write(`weft version: ${a.error}\n`);
    return agents.some((a) => a.error) ? 1 : 0;
  });
}

// ---------------------------------------------------------------- config dump
const DUMP_KINDS = ['workloads', 'services', 'policies', 'routes', 'certs', 'connections', 'endpoints', 'all'] as const;
type DumpKind = (typeof DUMP_KINDS)[number];

export const CONFIG_HELP = `usage: weft config dump [NODE] workloads|services|policies|routes|certs|connections|endpoints|all [-o json|yaml]

What one agent holds (the first node when none is named), in istioctl ztunnel-config's columns:
  workloads    NAMESPACE POD NAME ADDRESS NODE PROTOCOL (HBONE: meshed, TCP: plain)
  services     NAMESPACE SERVICE NAME SERVICE VIP PORTS ENDPOINTS
  policies     NAMESPACE POLICY NAME KIND ACTION SCOPE
  routes       NAMESPACE ROUTE NAME KIND PARENTS RULES
  certs        CERTIFICATE NAME TYPE STATUS VALID CERT SERIAL NUMBER NOT AFTER NOT BEFORE (every node if none named)
  connections  NODE DIRECTION SOURCE DESTINATION PROTOCOL SINCE (every node if none named)
  endpoints    NODE BACKEND ENDPOINT STATE OUTSTANDING EWMA REQUESTS FAILURES CIRCUIT POLICY RATE-LIMITED: each
               node's view of the endpoints it sent traffic to (TrafficPolicy: ejected until when and its
               ejection multiplier, load, peak-EWMA latency, the circuit's connections/pending/requests/retries
               in use against their limits), the 429s the endpoint's rate limit answered (counted on its own
               node: summed over the nodes shown), then the rate-limit buckets (every node if none named)

${TARGET_HELP}`;

interface CertSummary {
  spiffeId: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  secondsToExpiry: number;
}

function certRows(node: string | null, certs: CertSummary[], bundle: { subject: string; notAfter: string }[], now = Date.now()): Cell[][] {
  const rows: Cell[][] = [];
  for (const c of certs) {
    const valid = Date.parse(c.notBefore) <= now && now < Date.parse(c.notAfter);
    const soon = c.secondsToExpiry < 6 * 3600;
    rows.push([...(node ? [node] : []), c.spiffeId, 'Leaf', { text: valid ? (soon ? 'Expiring' : 'Available') : 'Expired', color: valid ? (soon ? 'yellow' : 'green') : 'red' }, valid ? 'true' : 'false', c.serial, c.notAfter, c.notBefore]);
  }
  for (const b of bundle) {
    const valid = Date.parse(b.notAfter) > now;
    rows.push([...(node ? [node] : []), b.subject.replace(/\n/g, ','), 'Root', { text: valid ? 'Available' : 'Expired', color: valid ? 'green' : 'red' }, valid ? 'true' : 'false', '-', b.notAfter, '-']);
  }
  return rows;
}

export async function configCommand(argv: string[]): Promise<number> {
  const { values, positionals, format } = parse('config', argv, {});
  if (values.help || positionals[0] !== 'dump') {
    process.stdout.write(CONFIG_HELP);
    return values.help ? 0 : 2;
  }
  const args = positionals.slice(1);
  const kind = args[args.length - 1] as DumpKind | undefined;
  if (!kind || !DUMP_KINDS.includes(kind)) throw new WeftConfigError('weft config dump', `name what to dump: ${DUMP_KINDS.join('|')}`);
  if (args.length > 2) throw new WeftConfigError('weft config dump', 'takes [NODE] and one kind');
  const node = args.length === 2 ? args[0] : undefined;
  const o = stdout();
  return withTarget(values, true, async (t) => {
    const agents = agentsOf(t, node);
    if (kind === 'endpoints') {
      const per = await Promise.all(agents.map(async (a) => ({ node: a.node, data: await getAgentJson<TrafficView>(a, '/traffic') })));
      if (format === 'json' || format === 'yaml') return void o.write(structured(format, per)), 0;
      o.write(endpointTables(o, per));
      return 0;
    }
    if (kind === 'certs' || kind === 'connections') {
      const per = await Promise.all(agents.map(async (a) => ({ node: a.node, data: await getAgentJson<Record<string, unknown>>(a, kind === 'certs' ? '/certs' : '/connections') })));
      if (format === 'json' || format === 'yaml') return void o.write(structured(format, per)), 0;
      if (kind === 'certs') {
        const rows = per.flatMap((p) => certRows(p.node, (p.data.certificates as CertSummary[]) ?? [], (p.data.trustBundle as { subject: string; notAfter: string }[]) ?? []));
        o.write(table(o, ['NODE', 'CERTIFICATE NAME', 'TYPE', 'STATUS', 'VALID CERT', 'SERIAL NUMBER', 'NOT AFTER', 'NOT BEFORE'], rows));
      } else {
        const rows = per.flatMap((p) => ((p.data.connections as Record<string, unknown>[]) ?? []).map((c) => [p.node, String(c.direction), String(c.source ?? '-'), String(c.destination ?? '-'), String(c.protocol ?? '-'), String(c.since)]));
        o.write(rows.length ? table(o, ['NODE', 'DIRECTION', 'SOURCE', 'DESTINATION', 'PROTOCOL', 'SINCE'], rows) : 'no open connections\n');
      }
      return 0;
    }
    const a = agents[0]!;
    const dump = await getAgentJson<{ status: unknown; config: MeshConfig }>(a, '/config_dump');
    const cfg = dump.config;
    if (kind === 'all') return void o.write(structured(format === 'yaml' ? 'yaml' : 'json', dump)), 0;
    let data: unknown[];
    let headers: string[];
    let rows: Cell[][];
    switch (kind) {
      case 'workloads':
        data = cfg.workloads;
        headers = ['NAMESPACE', 'POD NAME', 'ADDRESS', 'NODE', 'PROTOCOL', 'IDENTITY'];
        rows = cfg.workloads.map((w) => [w.namespace, w.name, w.ips.join(','), w.node, w.meshed ? 'HBONE' : 'TCP', `spiffe://${cfg.trustDomain ?? 'cluster.local'}/ns/${w.namespace}/sa/${w.serviceAccount}`]);
        break;
      case 'services':
        data = cfg.services;
        headers = ['NAMESPACE', 'SERVICE NAME', 'SERVICE VIP', 'PORTS', 'ENDPOINTS'];
        rows = cfg.services.map((s) => [s.namespace, s.name, s.clusterIPs.join(',') || 'None', s.ports.map((p) => `${p.port}${p.appProtocol ? `/${p.appProtocol}` : ''}`).join(','), `${s.endpoints.length}/${s.endpoints.length}`]);
        break;
      case 'policies': {
        const ps = cfg.policies.filter((p) => p.kind === 'AuthorizationPolicy' || p.kind === 'TrafficPolicy');
        data = ps;
        headers = ['NAMESPACE', 'POLICY NAME', 'KIND', 'ACTION', 'SCOPE'];
        rows = ps.map((p) => {
          const az = p.kind === 'AuthorizationPolicy' ? p.authz : undefined;
          const scope = az ? (az.scope.meshWide ? 'Global' : az.scope.matchLabels ? `WorkloadSelector` : 'Namespace') : 'Service';
          return [p.namespace, p.name, p.kind, az ? `${az.action}${az.dryRun ? ' (dry-run)' : ''}` : '-', scope];
        });
        break;
      }
      case 'routes': {
        const rs = cfg.policies.filter((p) => p.kind === 'HTTPRoute' || p.kind === 'GRPCRoute');
        data = rs;
        headers = ['NAMESPACE', 'ROUTE NAME', 'KIND', 'PARENTS', 'RULES'];
        rows = rs.map((p) => (p.kind === 'HTTPRoute' || p.kind === 'GRPCRoute' ? [p.namespace, p.name, p.kind, p.route.parents.map((x) => `${x.service}${x.port ? `:${x.port}` : ''}`).join(','), String(p.route.rules.length)] : []));
        break;
      }
    }
    if (format === 'json' || format === 'yaml') return void o.write(structured(format, data)), 0;
    o.write(rows.length ? table(o, headers, rows) : `no ${kind} on ${a.node}\n`);
    return 0;
  });
}

/** An agent's GET /traffic (agent/traffic/status.ts), the fields the table shows. */
export interface TrafficView {
  backends: {
    backend: string;
    policy: string | null;
    circuit: CircuitView;
    endpoints: { id: string; ejected: boolean; ejectedUntil: string | null; ejections: number; outstanding: number; ewmaLatencyMs: number; requests: number; failures: number; overloaded: number }[];
  }[];
  rateLimits: { policy: string; pod: string; entry: number; endpoint?: string; tokens: number; allowed: number; rejected: Record<string, number> }[];
}

interface CircuitView {
  open: boolean;
  activeRequests: number;
  activeConnections: number;
  activeRetries: number;
  pending?: number;
  limits?: { maxConnections?: number; http2MaxRequests?: number; http1MaxPendingRequests?: number; maxRetries?: number };
}

/** "closed" or "open", then each limit the policy sets as in use/limit: the circuit at a glance. */
export function circuitText(c: CircuitView): string {
  const l = c.limits ?? {};
  const parts = [c.open ? 'open' : 'closed'];
  if (l.maxConnections !== undefined) parts.push(`conn ${Math.max(c.activeConnections, c.activeRequests)}/${l.maxConnections}`);
  if (l.http1MaxPendingRequests !== undefined) parts.push(`pending ${c.pending ?? 0}/${l.http1MaxPendingRequests}`);
  if (l.http2MaxRequests !== undefined) parts.push(`req ${c.activeRequests}/${l.http2MaxRequests}`);
  if (l.maxRetries !== undefined) parts.push(`retries ${c.activeRetries}/${l.maxRetries}`);
  return parts.join(' ');
}

/** The endpoints dump as tables: each node's endpoints, then the rate-limit buckets. */
export function endpointTables(o: Out, per: { node: string; data: TrafficView }[]): string {
  // 429s are counted where the limit is enforced (the destination pod's node): summed over every node shown.
  const limited = new Map<string, number>();
  for (const p of per) for (const r of p.data.rateLimits) if (r.endpoint) limited.set(r.endpoint, (limited.get(r.endpoint) ?? 0) + Object.values(r.rejected).reduce((a, n) => a + n, 0));
  const rows = per.flatMap((p) =>
    p.data.backends.flatMap((b) =>
      b.endpoints.map((e) => [
        p.node,
        b.backend,
        e.id,
        e.ejected ? { text: `ejected until ${e.ejectedUntil ?? '?'} (x${e.ejections})`, color: 'red' as const } : { text: 'healthy', color: 'green' as const },
        String(e.outstanding),
        `${e.ewmaLatencyMs.toFixed(1)}ms`,
        String(e.requests),
        String(e.failures),
        b.circuit.open ? { text: circuitText(b.circuit), color: 'yellow' as const } : circuitText(b.circuit),
        b.policy ?? '-',
        String(limited.get(e.id) ?? 0),
      ]),
    ),
  );
  let out = rows.length ? table(o, ['NODE', 'BACKEND', 'ENDPOINT', 'STATE', 'OUTSTANDING', 'EWMA', 'REQUESTS', 'FAILURES', 'CIRCUIT', 'POLICY', 'RATE-LIMITED'], rows) : 'no endpoint has had traffic yet\n';
  const buckets = per.flatMap((p) => p.data.rateLimits.map((r) => [p.node, r.policy, r.endpoint ?? r.pod, r.entry < 0 ? 'default' : `perPrincipal[${r.entry}]`, r.tokens.toFixed(1), String(r.allowed), Object.entries(r.rejected).map(([who, n]) => `${who}=${n}`).join(' ') || '-']));
  if (buckets.length) out += '\n' + table(o, ['NODE', 'RATE LIMIT', 'ENDPOINT', 'BUCKET', 'TOKENS', 'ALLOWED', 'REJECTED'], buckets);
  return out;
}

// ---------------------------------------------------------------- certs
export const CERTS_HELP = `usage: weft certs [NODE] [-o json|yaml]

Every workload certificate each agent holds and the trust bundle, with expiry; exits 1 when a certificate is
expired or not yet valid.

${TARGET_HELP}`;

export async function certsCommand(argv: string[]): Promise<number> {
  const { values, positionals, format } = parse('certs', argv, {});
  if (values.help) return void process.stdout.write(CERTS_HELP), 0;
  const o = stdout();
  return withTarget(values, true, async (t) => {
    const per = await Promise.all(agentsOf(t, positionals[0]).map(async (a) => ({ node: a.node, ...(await getAgentJson<{ certificates: CertSummary[]; trustBundle: { subject: string; notAfter: string }[] }>(a, '/certs')) })));
    const now = Date.now();
    const bad = per.flatMap((p) => p.certificates.filter((c) => !(Date.parse(c.notBefore) <= now && now < Date.parse(c.notAfter))).map((c) => `${p.node} ${c.spiffeId}`));
    if (format === 'json' || format === 'yaml') o.write(structured(format, per));
    else o.write(table(o, ['NODE', 'CERTIFICATE NAME', 'TYPE', 'STATUS', 'VALID CERT', 'SERIAL NUMBER', 'NOT AFTER', 'NOT BEFORE'], per.flatMap((p) => certRows(p.node, p.certificates, p.trustBundle, now))));
    for (const b of bad) process.stderr.write(`weft certs: ${paint(o, 'red', 'invalid')} certificate ${b}\n`);
    return bad.length ? 1 : 0;
  });
}

// ---------------------------------------------------------------- policy status
export const POLICY_HELP = `usage: weft policy status [NAMESPACE] [-o json|yaml]

Every AuthorizationPolicy, HTTPRoute, GRPCRoute and TrafficPolicy the controller holds, with its status:
Enforced (compiled and acknowledged by every agent), Propagating, NACKed (an agent refused the config),
Refused (the controller rejected the object: the reason says which field). Exits 1 unless all are Enforced.
For an AuthorizationPolicy also: the pods it selects, the nodes they run on where it is in force (that
node's agent acknowledged the config), and the requests and connections it allowed and denied (summed over
the agents since they started; ? when the controller has no metrics source).

${TARGET_HELP}`;

interface PolicyStatus {
  configVersion: number;
  agents: { total: number; acked: number; nacks: { node: string; reason: string }[] };
  policies: {
    kind: string;
    namespace: string;
    name: string;
    status: string;
    reason?: string;
    /** AuthorizationPolicy: what it selects, where it is in force, what it decided */
    selected?: number;
    nodes?: { node: string; inForce: boolean }[];
    decisions?: { allow: number; deny: number; audit: number; dryRunAllow: number; dryRunDeny: number } | null;
  }[];
}

/** SELECTS, IN FORCE, ALLOW, DENY columns of an AuthorizationPolicy row ('-' for other kinds). */
function authzColumns(p: PolicyStatus['policies'][number]): string[] {
  if (p.selected === undefined) return ['-', '-', '-', '-'];
  const nodes = p.nodes ?? [];
  const inForce = nodes.filter((n) => n.inForce).map((n) => n.node);
  const d = p.decisions;
  const dry = d && d.dryRunAllow + d.dryRunDeny > 0 ? ` (dry run ${d.dryRunAllow}/${d.dryRunDeny})` : '';
  return [
    `${p.selected} pod${p.selected === 1 ? '' : 's'}`,
    nodes.length ? `${inForce.length}/${nodes.length}${inForce.length ? ` ${inForce.join(',')}` : ''}` : '-',
    d ? String(d.allow + d.audit) : '?',
    d ? `${d.deny}${dry}` : '?',
  ];
}

export async function policyCommand(argv: string[]): Promise<number> {
  const { values, positionals, format } = parse('policy', argv, {});
  if (values.help || positionals[0] !== 'status') {
    process.stdout.write(POLICY_HELP);
    return values.help ? 0 : 2;
  }
  const ns = positionals[1];
  const o = stdout();
  return withTarget(values, false, async (t) => {
    const s = await getJson<PolicyStatus>(t, '/api/v1/policies');
    const ps = ns ? s.policies.filter((p) => p.namespace === ns) : s.policies;
    if (format === 'json' || format === 'yaml') o.write(structured(format, { ...s, policies: ps }));
    else {
      const color = (st: string) => (st === 'Enforced' ? 'green' : st === 'Propagating' ? 'yellow' : 'red') as 'green' | 'yellow' | 'red';
      o.write(
        ps.length
          ? table(o, ['NAMESPACE', 'NAME', 'KIND', 'STATUS', 'SELECTS', 'IN FORCE', 'ALLOWED', 'DENIED', 'REASON'], ps.map((p) => [p.namespace, p.name, p.kind, { text: p.status, color: color(p.status) }, ...authzColumns(p), p.reason ?? '']))
          : `no policies${ns ? ` in ${ns}` : ''}\n`,
      );
      o.write(`config version ${s.configVersion}: ${s.agents.acked}/${s.agents.total} agents acknowledged${s.agents.nacks.length ? `; NACK from ${s.agents.nacks.map((n) => `${n.node} (${n.reason})`).join(', ')}` : ''}\n`);
    }
    return ps.every((p) => p.status === 'Enforced') ? 0 : 1;
  });
}
