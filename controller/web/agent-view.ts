// What operators see about each agent, derived from the registry: the agent's own report plus the flags the
// page raises (disconnected, NACK, certificate expiring or expired, report stale, unhealthy). Pure, so the
// JSON API, the live stream and the tests all share one definition of "something is wrong".
import type { AgentRecord, AgentReport } from '../agents/registry.js';

export type ProblemKind = 'disconnected' | 'nack' | 'cert-expired' | 'cert-expiring' | 'unhealthy' | 'stale-report' | 'no-report';

export interface Problem {
  kind: ProblemKind;
  severity: 'warn' | 'error';
  message: string;
}

export interface AgentView {
  node: string;
  connected: boolean;
  connectedAt: string | null;
  disconnectedAt: string | null;
  peer: string | null;
  configVersion: number | null;
  lastSentVersion: number | null;
  ack: AgentReport['ack'] | null;
  nackReason: string | null;
  healthy: boolean | null;
  certExpiry: string | null;
  certExpiresInSeconds: number | null;
  counters: AgentReport['counters'] | null;
  reportedAt: string | null;
  reportAgeSeconds: number | null;
  severity: 'ok' | 'warn' | 'error';
  problems: Problem[];
}

export interface ViewThresholds {
  /** flag a certificate expiring within this many seconds (agents rotate at half life, so this means rotation is failing) */
  certExpiryWarningSeconds: number;
  /** flag a connected agent whose last report is older than this */
  staleReportSeconds: number;
}

export interface AgentsPayload {
  generatedAt: string;
  thresholds: ViewThresholds;
  summary: { agents: number; connected: number; disconnected: number; nack: number; certExpiringSoon: number; withProblems: number };
  agents: AgentView[];
}

export function duration(seconds: number): string {
  const s = Math.abs(Math.round(seconds));
  if (s < 120) return `${s}s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m}m`;
  if (m < 2880) return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.round(s / 86400)}d`;
}

export function agentView(rec: AgentRecord, now: number, th: ViewThresholds): AgentView {
  const r = rec.lastReport;
  const problems: Problem[] = [];
  if (!rec.connected) {
    const since = rec.disconnectedAt ? ` since ${rec.disconnectedAt} (${duration((now - Date.parse(rec.disconnectedAt)) / 1000)} ago)` : '';
    problems.push({ kind: 'disconnected', severity: 'error', message: `agent disconnected${since}; it keeps serving its last config` });
  }
  if (r?.ack === 'NACK') {
    problems.push({ kind: 'nack', severity: 'error', message: `config version ${r.lastSentVersion} rejected: ${r.nackReason ?? 'no reason given'}; serving version ${r.configVersion}` });
  }
  let certExpiresInSeconds: number | null = null;
  if (r?.certExpiry) {
    const t = Date.parse(r.certExpiry);
    if (!Number.isNaN(t)) {
      certExpiresInSeconds = Math.round((t - now) / 1000);
      if (certExpiresInSeconds <= 0) problems.push({ kind: 'cert-expired', severity: 'error', message: `a workload certificate expired ${duration(certExpiresInSeconds)} ago` });
      else if (certExpiresInSeconds < th.certExpiryWarningSeconds) {
        problems.push({ kind: 'cert-expiring', severity: 'warn', message: `a workload certificate expires in ${duration(certExpiresInSeconds)} (rotation should have renewed it)` });
      }
    }
  }
  if (r && !r.healthy) problems.push({ kind: 'unhealthy', severity: 'error', message: 'agent reports itself unhealthy' });
  let reportAgeSeconds: number | null = null;
  if (r) {
    reportAgeSeconds = Math.max(0, Math.round((now - Date.parse(r.reportedAt)) / 1000));
    if (rec.connected && reportAgeSeconds > th.staleReportSeconds) {
      problems.push({ kind: 'stale-report', severity: 'warn', message: `no report for ${duration(reportAgeSeconds)}` });
    }
  } else if (rec.connected) {
    problems.push({ kind: 'no-report', severity: 'warn', message: 'connected, no report yet' });
  }
  const severity = problems.some((p) => p.severity === 'error') ? 'error' : problems.length ? 'warn' : 'ok';
  return {
    node: rec.node,
    connected: rec.connected,
    connectedAt: rec.connectedAt ?? null,
    disconnectedAt: rec.disconnectedAt ?? null,
    peer: rec.peer ?? null,
    configVersion: r?.configVersion ?? null,
    lastSentVersion: r?.lastSentVersion ?? null,
    ack: r?.ack ?? null,
    nackReason: r?.nackReason ?? null,
    healthy: r ? r.healthy : null,
    certExpiry: r?.certExpiry ?? null,
    certExpiresInSeconds,
    counters: r ? { ...r.counters } : null,
    reportedAt: r?.reportedAt ?? null,
    reportAgeSeconds,
    severity,
    problems,
  };
}

export function agentsPayload(records: AgentRecord[], now: number, th: ViewThresholds): AgentsPayload {
  const agents = records.map((r) => agentView(r, now, th));
  const has = (a: AgentView, k: ProblemKind) => a.problems.some((p) => p.kind === k);
  return {
    generatedAt: new Date(now).toISOString(),
    thresholds: th,
    summary: {
      agents: agents.length,
      connected: agents.filter((a) => a.connected).length,
      disconnected: agents.filter((a) => !a.connected).length,
      nack: agents.filter((a) => has(a, 'nack')).length,
      certExpiringSoon: agents.filter((a) => has(a, 'cert-expiring') || has(a, 'cert-expired')).length,
      withProblems: agents.filter((a) => a.problems.length > 0).length,
    },
    agents,
  };
}
