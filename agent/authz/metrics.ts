// Authorization metrics: every decision a policy took part in, by policy, action and outcome, and the
// connections closed because of a policy (refused at admission, or revoked when a new policy denied them).
// Children are cached per label set: a request pays one Map lookup, not prom-client's label hashing.
import { Counter, type Registry } from 'prom-client';

export type DecisionLabel = 'allow' | 'deny' | 'audit' | 'dry_run_allow' | 'dry_run_deny';

export class AuthzMetrics {
  private readonly decisions: Counter<'policy' | 'action' | 'decision'>;
  private readonly denied: Counter<'policy' | 'reason'>;
  private readonly decisionChildren = new Map<string, { inc(): void }>();
  private readonly deniedChildren = new Map<string, { inc(): void }>();

  constructor(registry: Registry) {
    this.decisions = new Counter({
      name: 'weft_authz_decisions_total',
      help: 'Authorization decisions a policy took part in, by policy (<namespace>/<name>; empty: no ALLOW policy matched), action and decision',
      labelNames: ['policy', 'action', 'decision'],
      registers: [registry],
    });
    this.denied = new Counter({
      name: 'weft_authz_denied_connections_total',
      help: 'Connections closed by authorization, by deciding policy and reason (admission: refused when opened; revoked: closed when a new policy denied it)',
      labelNames: ['policy', 'reason'],
      registers: [registry],
    });
  }

  decision(policy: string, action: string, decision: DecisionLabel): void {
    const k = `${policy}\0${action}\0${decision}`;
    let c = this.decisionChildren.get(k);
    if (!c) this.decisionChildren.set(k, (c = this.decisions.labels(policy, action, decision)));
    c.inc();
  }

  deniedConnection(policy: string, reason: 'admission' | 'revoked'): void {
    const k = `${policy}\0${reason}`;
    let c = this.deniedChildren.get(k);
    if (!c) this.deniedChildren.set(k, (c = this.denied.labels(policy, reason)));
    c.inc();
  }
}
