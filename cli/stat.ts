// `weft stat [ns[/workload|svc]]`: golden metrics per workload and Service, linkerd viz stat's columns,
// from the controller's /api/v1/stat (which reads Prometheus, or scrapes the agents when there is none).
import { WeftError } from '../common/errors.js';
import type { StatRow } from '../controller/telemetry/golden.js';
import { parse, TARGET_HELP, withTarget } from './common.js';
import { ms, num, pct, rateColor, stdout, structured, table, type Out } from './output.js';
import { getJson } from './target.js';

export const STAT_HELP = `usage: weft stat [NAMESPACE[/WORKLOAD|SERVICE]] [--window 1m] [--source auto|agents|prometheus] [-o json|yaml]

Golden metrics over the window, as linkerd viz stat shows them: NAME, MESHED (meshed pods/pods), SUCCESS
(non-5xx share), RPS, LATENCY_P50/P95/P99, TCP_CONN (open TCP connections). Without an argument: every
workload and Service; with a namespace: those in it; with one workload: also INBOUND (per caller) and
OUTBOUND (per destination); with one Service: also its BACKENDS.

${TARGET_HELP}`;

export interface StatAnswer {
  window: string;
  windowSeconds: number;
  source: string;
  at: string;
  resource: string;
  workloads?: StatRow[];
  services?: StatRow[];
  inbound?: StatRow[];
  outbound?: StatRow[];
  backends?: StatRow[];
}

export function statTable(o: Out, rows: StatRow[], title: string | undefined, meshedCol: boolean): string {
  const headers = ['NAME', ...(meshedCol ? ['MESHED'] : []), 'SUCCESS', 'RPS', 'LATENCY_P50', 'LATENCY_P95', 'LATENCY_P99', ...(meshedCol ? ['TCP_CONN'] : [])];
  const body = rows.map((r) => [
    `${r.namespace}/${r.name}`,
    ...(meshedCol ? [r.meshed ?? '-'] : []),
    { text: pct(r.success), ...(rateColor(r.success) ? { color: rateColor(r.success)! } : {}) },
    `${num(r.rps)}rps`,
    ms(r.p50),
    ms(r.p95),
    ms(r.p99),
    ...(meshedCol ? [r.tcpConn === null ? '-' : String(r.tcpConn)] : []),
  ]);
  return (title ? `${title}\n` : '') + table(o, headers, body);
}

export function renderStat(o: Out, a: StatAnswer): string {
  const parts: string[] = [];
  if (a.workloads?.length) parts.push(statTable(o, a.workloads, a.services?.length || a.inbound ? 'WORKLOADS' : undefined, true));
  if (a.services?.length) parts.push(statTable(o, a.services, 'SERVICES', false));
  if (a.inbound) parts.push(a.inbound.length ? statTable(o, a.inbound, 'INBOUND (from)', false) : 'INBOUND (from)\n(no requests in the window)\n');
  if (a.outbound) parts.push(a.outbound.length ? statTable(o, a.outbound, 'OUTBOUND (to)', false) : 'OUTBOUND (to)\n(no requests in the window)\n');
  if (a.backends) parts.push(a.backends.length ? statTable(o, a.backends, 'BACKENDS', false) : 'BACKENDS\n(no requests in the window)\n');
  if (!parts.length) parts.push('no workloads or Services\n');
  parts.push(`(${a.window} window, from ${a.source === 'prometheus' ? 'Prometheus' : 'the agents'})\n`);
  return parts.join('\n');
}

export async function statCommand(argv: string[]): Promise<number> {
  const { values, positionals, format } = parse('stat', argv, { window: { type: 'string', short: 'w' }, source: { type: 'string' } });
  if (values.help) {
    process.stdout.write(STAT_HELP);
    return 0;
  }
  if (positionals.length > 1) throw new WeftError('WEFT_ERR_CONFIG', `weft stat takes one NAMESPACE[/NAME], got ${positionals.join(' ')}`);
  return withTarget(values, false, async (t) => {
    const q = new URLSearchParams({ resource: positionals[0] ?? '', window: (values.window as string) ?? '1m', source: (values.source as string) ?? 'auto' });
    const a = await getJson<StatAnswer>(t, `/api/v1/stat?${q}`, 20_000);
    const o = stdout();
    o.write(format === 'json' || format === 'yaml' ? structured(format, a) : renderStat(o, a));
    return 0;
  });
}
