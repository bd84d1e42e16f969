// The proxy's Authorizer (agent/proxy/authorize.ts) backed by the compiled AuthorizationPolicies of the
// config in force. Per config version it builds one table for the workloads on this node; each decision
// reads it. Connections and streams admitted with a `revoke` callback are remembered with the inputs that
// admitted them, and re-evaluated when a new version arrives: what the new policy denies is closed at once,
// with a log line naming the policy (as ztunnel does at L4; here also for HTTP/2 streams).
import type { Logger } from '../../common/log.js';
import type { Workload } from '../../common/mesh.js';
import type { AuthorizeContext, AuthorizeDecision, Authorizer } from '../proxy/authorize.js';
import type { MeshState } from '../state/mesh-state.js';
import { evaluate, type AuthzDecision, type AuthzInput } from './evaluate.js';
import type { AuthzMetrics } from './metrics.js';
import { AuthzTable } from './table.js';

interface Watched {
  workload: Workload;
  input: AuthzInput;
  revoke: NonNullable<AuthorizeContext['revoke']>;
  what: string;
}

export interface PolicyCounts {
  allow: number;
  deny: number;
  audit: number;
  dryRunDeny: number;
}

export interface PolicyEnforcerOptions {
  state: MeshState;
  log: Logger;
  metrics?: AuthzMetrics;
}

const describe = (ctx: AuthorizeContext) =>
  `${ctx.sourcePrincipal ?? ctx.sourceIp ?? 'unknown source'} → ${ctx.destination.namespace}/${ctx.destination.name}:${ctx.destinationPort}${ctx.request ? ` ${ctx.request.method} ${ctx.request.path}` : ''}`;

const ALLOWED: AuthorizeDecision = Object.freeze({ allow: true });

export class PolicyEnforcer {
  private table: AuthzTable;
  private nextId = 1;
  private readonly watched = new Map<number, Watched>();
  private readonly counts = new Map<string, PolicyCounts>();
  private readonly unsub: () => void;

  constructor(private readonly o: PolicyEnforcerOptions) {
    this.table = this.build();
    this.unsub = o.state.onUpdate(() => this.onConfig());
  }

  private build(): AuthzTable {
    const s = this.o.state;
    return new AuthzTable(s.version, s.config.policies, s.localWorkloads());
  }

  get version(): number {
    return this.table.version;
  }

  /** the table in force (status, tests) */
  current(): AuthzTable {
    return this.table;
  }

  readonly authorize: Authorizer = (ctx) => this.decide(ctx);

  decide(ctx: AuthorizeContext): AuthorizeDecision {
    const wp = this.table.forWorkload(ctx.destination.uid);
    // nothing selects the workload and no watch asked for: allowed, nothing to report or remember
    if (!ctx.revoke && wp.deny.length === 0 && wp.allow.length === 0 && wp.audit.length === 0 && wp.dryRun.length === 0) return ALLOWED;
    const input: AuthzInput = {
      principal: ctx.sourcePrincipal,
      sourceIp: ctx.sourceIp,
      destinationIp: ctx.destinationIp ?? ctx.destination.ips[0] ?? '',
      destinationPort: ctx.destinationPort,
      ...(ctx.request ? { http: ctx.request } : {}),
    };
    const d = evaluate(wp, input);
    this.report(d, ctx, 'admission');
    if (!d.allow) return { allow: false, reason: d.policy ? `denied by AuthorizationPolicy ${d.policy}` : 'no ALLOW policy matched', ...(d.policy ? { policy: d.policy } : {}) };
    const out: AuthorizeDecision = { allow: true, ...(d.policy ? { policy: d.policy } : {}) };
    if (ctx.revoke) {
      const id = this.nextId++;
      // a stream's request attributes stay valid for its life: the watch keeps them for re-evaluation
      this.watched.set(id, { workload: ctx.destination, input, revoke: ctx.revoke, what: describe(ctx) });
      out.release = () => void this.watched.delete(id);
    }
    return out;
  }

  /**
   * Re-decides an open connection or request with the table in force (the pipeline's live registry, on a
   * new config version): not counted as an admission; a denial is counted and logged as a revocation.
   */
  recheck(ctx: AuthorizeContext): AuthorizeDecision {
    const input: AuthzInput = {
      principal: ctx.sourcePrincipal,
      sourceIp: ctx.sourceIp,
      destinationIp: ctx.destinationIp ?? ctx.destination.ips[0] ?? '',
      destinationPort: ctx.destinationPort,
      ...(ctx.request ? { http: ctx.request } : {}),
    };
    const d = evaluate(this.table.forWorkload(ctx.destination.uid), input);
    if (d.allow) return d.policy ? { allow: true, policy: d.policy } : ALLOWED;
    this.o.metrics?.decision(d.policy ?? '', d.reason === 'denied_by_policy' ? 'DENY' : 'ALLOW', 'deny');
    if (d.policy) this.count(d.policy).deny++;
    if (!ctx.request) this.o.metrics?.deniedConnection(d.policy ?? '', 'revoked');
    return { allow: false, reason: d.reason, ...(d.policy ? { policy: d.policy } : {}) };
  }

  private count(policy: string): PolicyCounts {
    let c = this.counts.get(policy);
    if (!c) this.counts.set(policy, (c = { allow: 0, deny: 0, audit: 0, dryRunDeny: 0 }));
    return c;
  }

  private report(d: AuthzDecision, ctx: AuthorizeContext, phase: 'admission' | 'revoked'): void {
    const m = this.o.metrics;
    if (d.reason !== 'no_policy') {
      const action = d.reason === 'denied_by_policy' ? 'DENY' : 'ALLOW';
      m?.decision(d.policy ?? '', action, d.allow ? 'allow' : 'deny');
      if (d.policy) this.count(d.policy)[d.allow ? 'allow' : 'deny']++;
      if (!d.allow && !ctx.request) m?.deniedConnection(d.policy ?? '', phase);
    }
    for (const a of d.audited) {
      m?.decision(a, 'AUDIT', 'audit');
      this.count(a.replace(/ \(dry-run\)$/, '')).audit++;
      this.o.log.info('authorization audit', { policy: a, request: describe(ctx), decision: d.allow ? 'allow' : 'deny', phase });
    }
    if (d.dryRun) {
      const r = d.dryRun;
      const changed = r.allow !== d.allow || r.policy !== d.policy;
      if (changed || r.policy) {
        m?.decision(r.policy ?? '', r.reason === 'denied_by_policy' ? 'DENY' : 'ALLOW', r.allow ? 'dry_run_allow' : 'dry_run_deny');
        if (r.policy && !r.allow) this.count(r.policy).dryRunDeny++;
        this.o.log.info('authorization dry run', { policy: r.policy ?? null, wouldAllow: r.allow, enforced: d.allow ? 'allow' : 'deny', reason: r.reason, request: describe(ctx) });
      }
    }
  }

  private onConfig(): void {
    this.table = this.build();
    let closed = 0;
    for (const [id, w] of this.watched) {
      const now = this.o.state.workloadByUid(w.workload.uid) ?? w.workload;
      const d = evaluate(this.table.forWorkload(now.uid), w.input);
      if (d.allow) continue;
      this.watched.delete(id);
      closed++;
      const policy = d.policy;
      this.o.log.warn('open connection closed: now denied by policy', { policy: policy ?? null, reason: d.reason, connection: w.what, version: this.table.version });
      this.o.metrics?.decision(policy ?? '', d.reason === 'denied_by_policy' ? 'DENY' : 'ALLOW', 'deny');
      if (policy) this.count(policy).deny++;
      if (!w.input.http) this.o.metrics?.deniedConnection(policy ?? '', 'revoked');
      try {
        w.revoke({ policy, reason: d.reason });
      } catch (e) {
        this.o.log.warn('closing a revoked connection failed', { error: e, connection: w.what });
      }
    }
    if (closed) this.o.log.info('policy change re-evaluated open connections', { version: this.table.version, open: this.watched.size + closed, closed });
  }

  /** open connections and streams being watched */
  get watching(): number {
    return this.watched.size;
  }

  /** Per policy: the local workloads it selects and its decision counts on this node (admin API). */
  status(): { version: number; node: string; policies: Array<{ policy: string; action: string; dryRun: boolean; workloads: string[] } & PolicyCounts> } {
    const t = this.table;
    const policies = [...t.policies.values()].map((p) => ({
      policy: p.id,
      action: p.action,
      dryRun: p.dryRun,
      workloads: t.selectedBy(p.key).map((uid) => {
        const w = this.o.state.workloadByUid(uid);
        return w ? `${w.namespace}/${w.name}` : uid;
      }),
      ...(this.counts.get(p.id) ?? { allow: 0, deny: 0, audit: 0, dryRunDeny: 0 }),
    }));
    return { version: t.version, node: this.o.state.nodeName, policies };
  }

  close(): void {
    this.unsub();
    this.watched.clear();
  }
}
