// `weft check`: is this machine ready for Weft (--pre: kernel, cgroup v2, bpffs, privileges, free ports), and
// is the running mesh healthy (agents connected, config acknowledged everywhere, certificates valid, capture
// working on every node)? One row per check; exit 1 when any fails, so scripts and CI can gate on it.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { release } from 'node:os';

import { PORTS } from '../common/ports.js';
import { parse, TARGET_HELP, withTarget } from './common.js';
import { stdout, structured, table, type Cell } from './output.js';
import { getAgentJson, getJson, type Target } from './target.js';

export const CHECK_HELP = `usage: weft check [--pre] [-o json|yaml]

  --pre    only the pre-install checks of this machine: kernel >= 5.7 (BPF links), cgroup v2 mounted, bpffs
           mounted, root or CAP_BPF+CAP_NET_ADMIN+CAP_SYS_ADMIN, ports ${PORTS.outbound}, ${PORTS.inboundTunnel}, ${PORTS.metrics}, ${PORTS.health} free
without --pre, also the running mesh: every agent connected, the newest config acknowledged by every agent
(no NACK), every workload certificate valid and not about to expire, capture attached with no pod left
unresolved on every node. Exit 1 when a check fails.

${TARGET_HELP}`;

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export function kernelCheck(rel = release()): Check {
  const [maj, min] = rel.split('.').map((x) => parseInt(x, 10)) as [number, number];
  const ok = maj > 5 || (maj === 5 && min >= 7);
  return { name: 'kernel', ok, detail: ok ? `${rel} (BPF links, cgroup connect hooks)` : `${rel}: Weft needs Linux 5.7 or newer (BPF links)` };
}

export function mountsCheck(mounts = readFileSync('/proc/mounts', 'utf8')): Check[] {
  const lines = mounts.split('\n').map((l) => l.split(' '));
  const cg2 = lines.find((l) => l[2] === 'cgroup2');
  const bpf = lines.find((l) => l[2] === 'bpf');
  return [
    { name: 'cgroup v2', ok: !!cg2, detail: cg2 ? `mounted at ${cg2[1]}` : 'no cgroup2 mount: boot with systemd.unified_cgroup_hierarchy=1 (Kubernetes nodes need cgroup v2 for Weft)' },
    { name: 'bpffs', ok: true, detail: bpf ? `mounted at ${bpf[1]}` : 'not mounted; the agent mounts it at /sys/fs/bpf (or mount -t bpf bpf /sys/fs/bpf)' },
  ];
}

export function capsCheck(status = readFileSync('/proc/self/status', 'utf8')): Check {
  const eff = BigInt('0x' + (/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'));
  const has = (bit: number) => (eff >> BigInt(bit)) & 1n;
  const need = { CAP_NET_ADMIN: 12, CAP_SYS_ADMIN: 21, CAP_BPF: 39 } as const;
  const missing = Object.entries(need).filter(([, b]) => !has(b)).map(([n]) => n);
  // CAP_SYS_ADMIN covers BPF on kernels without CAP_BPF
  const ok = missing.length === 0 || (missing.length === 1 && missing[0] === 'CAP_BPF' && !!has(21));
  return { name: 'privileges', ok, detail: ok ? 'CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN present' : `missing ${missing.join(', ')}: run the agent as root (the DaemonSet is privileged)` };
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export async function preChecks(ports = true): Promise<Check[]> {
  const out: Check[] = [kernelCheck(), ...mountsCheck(), capsCheck()];
  if (!ports) return out;
  const busy: number[] = [];
  for (const p of [PORTS.outbound, PORTS.inboundTunnel, PORTS.metrics, PORTS.health]) if (!(await portFree(p))) busy.push(p);
  out.push({ name: 'ports', ok: busy.length === 0, detail: busy.length ? `in use on this host: ${busy.join(', ')} (another mesh or an agent already running?)` : `${PORTS.outbound}, ${PORTS.inboundTunnel}, ${PORTS.metrics}, ${PORTS.health} free` });
  return out;
}

interface AgentsPayload {
  agents: { node: string; connected: boolean; configVersion: number | null; ack: string | null; nackReason: string | null; certExpiresInSeconds: number | null; problems: { kind: string; message: string }[] }[];
}

export async function meshChecks(t: Target): Promise<Check[]> {
  const out: Check[] = [];
  const [agents, version] = await Promise.all([getJson<AgentsPayload>(t, '/api/v1/agents'), getJson<{ configVersion: number }>(t, '/api/v1/version')]);
  const list = agents.agents;
  const down = list.filter((a) => !a.connected);
  out.push({ name: 'agents connected', ok: list.length > 0 && down.length === 0, detail: list.length === 0 ? 'no agent has connected to the controller' : down.length ? `disconnected: ${down.map((a) => a.node).join(', ')}` : `${list.length} of ${list.length}` });
  const behind = list.filter((a) => a.ack === 'NACK' || (a.configVersion ?? -1) < version.configVersion);
  out.push({ name: 'config acknowledged', ok: behind.length === 0 && list.length > 0, detail: behind.length ? behind.map((a) => `${a.node}: ${a.ack === 'NACK' ? `NACK (${a.nackReason ?? ''})` : `serving ${a.configVersion}, newest ${version.configVersion}`}`).join('; ') : `version ${version.configVersion} on every agent` });
  const certBad = list.filter((a) => a.problems.some((p) => p.kind === 'cert-expired' || p.kind === 'cert-expiring'));
  out.push({ name: 'certificates', ok: certBad.length === 0, detail: certBad.length ? certBad.map((a) => `${a.node}: ${a.problems.filter((p) => p.kind.startsWith('cert')).map((p) => p.message).join(', ')}`).join('; ') : 'every agent\'s certificates valid' });
  for (const a of t.agents) {
    try {
      const c = await getAgentJson<{ enrolled?: unknown; unresolvedPods?: unknown; capture?: string }>(a, '/capture');
      const enrolled = Array.isArray(c.enrolled) ? c.enrolled.length : typeof c.enrolled === 'number' ? c.enrolled : null;
      const unresolved = Array.isArray(c.unresolvedPods) ? c.unresolvedPods.length : typeof c.unresolvedPods === 'number' ? c.unresolvedPods : 0;
      const ok = c.capture !== 'not wired' && unresolved === 0;
      out.push({ name: `capture ${a.node}`, ok, detail: c.capture === 'not wired' ? 'capture is not running on this agent' : unresolved ? `${unresolved} pods whose cgroup could not be resolved (not captured)` : `${enrolled ?? '?'} pods enrolled` });
    } catch (e) {
      out.push({ name: `capture ${a.node}`, ok: false, detail: (e as Error).message });
    }
  }
  return out;
}

export async function checkCommand(argv: string[]): Promise<number> {
  const { values, format } = parse('check', argv, { pre: { type: 'boolean' } });
  if (values.help) return void process.stdout.write(CHECK_HELP), 0;
  // free ports only matter before an install: with Weft running, its agent holds them on a node
  const checks = await preChecks(!!values.pre);
  if (!values.pre) checks.push(...(await withTarget(values, true, (t) => meshChecks(t))));
  const o = stdout();
  if (format === 'json' || format === 'yaml') o.write(structured(format, checks));
  else o.write(table(o, ['CHECK', 'STATUS', 'DETAIL'], checks.map((c): Cell[] => [c.name, { text: c.ok ? 'ok' : 'FAIL', color: c.ok ? 'green' : 'red' }, c.detail])));
  return checks.every((c) => c.ok) ? 0 : 1;
}
