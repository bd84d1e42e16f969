// Authorization metrics: every decision a policy took part in, by policy, action and outcome, and the
// connections closed because of a policy (refused at admission, or revoked when a new policy denied them).
// A decision costs one Map lookup and an increment: the counts live here and are handed to prom-client
// only when Prometheus scrapes (prom-client hashes a label set on every inc, which a per-request path
// should not pay).
import { Counter, type Registry } from 'prom-client';

export type DecisionLabel = 'allow' | 'deny' | 'audit' | 'dry_run_allow' | 'dry_run_deny';

interface Cell<L> {
  labels: L;
  n: number;
}

export class AuthzMetrics {
  private readonly decisions = new Map<string, Cell<{ policy: string; action: string; decision: DecisionLabel }>>();
  private readonly denied = new Map<string, Cell<{ policy: string; reason: string }>>();

  constructor(registry: Registry) {
    const decisions = this.decisions;
    const denied = this.denied;
    new Counter({
      name: 'weft_authz_decisions_total',
      help: 'Authorization decisions a policy took part in, by policy (<namespace>/<name>; empty: no ALLOW policy matched), action and decision',
      labelNames: ['policy', 'action', 'decision'],
      registers: [registry],
      collect() {
        this.reset();
        for (const c of decisions.values()) this.inc(c.labels, c.n);
      },
    });
    new Counter({
      name: 'weft_authz_denied_connections_total',
      help: 'Connections closed by authorization, by deciding policy and reason (admission: refused when opened; revoked: closed when a new policy denied it)',
      labelNames: ['policy', 'reason'],
      registers: [registry],
      collect() {
        this.reset();
        for (const c of denied.values()) this.inc(c.labels, c.n);
      },
    });
  }

  decision(policy: string, action: string, decision: DecisionLabel): void {
    const k = `${policy}\0${action}\0${decision}`;
    const c = this.decisions.get(k);
    if (c) c.n++;
    else this.decisions.set(k, { labels: { policy, action, decision }, n: 1 });
  }

  deniedConnection(policy: string, reason: 'admission' | 'revoked'): void {
    const k = `${policy}\0${reason}`;
    const c = this.denied.get(k);
    if (c) c.n++;
    else this.denied.set(k, { labels: { policy, reason }, n: 1 });
  }
}
