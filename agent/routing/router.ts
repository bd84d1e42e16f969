// The Router stage (agent/pipeline/stages.ts): per request, which route rule applies to a call to a Service
// and what it asks for — weighted backends, header edits, redirect, rewrite, mirrors, timeouts, retries
// within the Service's retry budget. Built once per config version from the compiled routes
// (RouteTables) and TrafficPolicies (TrafficTable); everything derivable is computed once per table entry
// and shared, so a request that needs no rewrite or redirect allocates only its match input.
//
// Routes apply only when a client called a Service (by ClusterIP, which is what a Service name resolves
// to); a call to a pod IP goes where it was sent. A Service with no route attached for the caller goes to
// itself with its TrafficPolicy's retries and timeouts, or the default retry (a connection that failed
// before a byte was sent is tried once more on another endpoint).
import type { TrafficEntry } from '../../common/policy.js';
import type { HeaderModifier, RouteFilter } from '../../common/policy/route.js';
import type { CompiledRetryBudget, CompiledTraffic } from '../../common/policy/traffic.js';
import type { RequestContext } from '../pipeline/context.js';
import { addressedBackend } from '../pipeline/defaults.js';
import type { AttemptResult, Backend, ForwardAction, HeaderEdits, Observer, RetryPolicy, Router, RouteAction, StageInput, WeightedBackend } from '../pipeline/stages.js';
import { TrafficTable } from '../traffic/table.js';
import { DEFAULT_RETRY_BUDGET, RetryBudget } from './budget.js';
import type { MatchInput } from './match.js';
import type { RoutingMetrics } from './metrics.js';
import { DEFAULT_RETRY_RULE, decideRetry, routeRetryRule, trafficRetryRule, type RetryRule } from './retry.js';
import { modifyPath, redirectLocation } from './rewrite.js';
import { matchRoute, RouteTables, type TableEntry } from './table.js';

/** A RequestMirror to send alongside the request (responses ignored); read by the adapters from the action. */
export interface MirrorTarget {
  /** undefined: the mirror backend did not resolve (nothing is sent) */
  backend: Backend | undefined;
  /** "<ns>/<name>" for metrics */
  name: string;
  percent: number;
  /** counts what became of one copy (weft_mirrored_requests_total) */
  count(result: 'sent' | 'failed' | 'skipped'): void;
}

/** ForwardAction with what only routing adds (mirrors); adapters that know mirrors read `mirrors`. */
export interface RoutedForward extends ForwardAction {
  mirrors?: readonly MirrorTarget[];
}

const BUDGET_SPACE = 'retry-budget';

class Retry implements RetryPolicy {
  constructor(
    private readonly rule: RetryRule,
    private readonly budget: RetryBudget,
    private readonly service: string,
    private readonly metrics: RoutingMetrics | undefined,
  ) {}

  next(_ctx: RequestContext, attempt: number, result: AttemptResult): number | undefined {
    const v = decideRetry(this.rule, attempt, result, this.budget);
    if (v.retry) {
      this.metrics?.retry(this.service, this.rule.source);
      return v.delayMs;
    }
    if (v.reason === 'budget_exhausted') this.metrics?.budgetExhausted(this.service);
    return undefined;
  }
}

function edits(m: HeaderModifier): HeaderEdits {
  return { set: m.set, add: m.add, remove: m.remove };
}

function filterOf<T extends RouteFilter['type']>(fs: readonly RouteFilter[], type: T): Extract<RouteFilter, { type: T }> | undefined {
  return fs.find((f) => f.type === type) as Extract<RouteFilter, { type: T }> | undefined;
}

/** What a matched rule does, computed once per table entry. */
interface RuleAction {
  redirect?: Extract<RouteFilter, { type: 'RequestRedirect' }>;
  forward: RoutedForward;
  /** URLRewrite: path modifier (needs the request path) and host */
  rewrite?: Extract<RouteFilter, { type: 'URLRewrite' }>;
}

export interface RouterDeps {
  metrics?: RoutingMetrics;
}

/** The Router factory for agent/pipeline/wiring.ts. */
export function routingRouter(deps: RouterDeps = {}): (input: StageInput) => Router {
  return (input) => new MeshRouter(input, deps.metrics);
}

class MeshRouter implements Router {
  private readonly tables: RouteTables;
  private readonly traffic: TrafficTable;
  private readonly ruleActions = new WeakMap<TableEntry, RuleAction>();
  private readonly plain = new Map<string, ForwardAction>();
  private readonly budgets = new Map<string, RetryBudget>();
  private readonly trustDomain: string;

  constructor(
    private readonly input: StageInput,
    private readonly metrics: RoutingMetrics | undefined,
  ) {
    this.tables = new RouteTables(input.config);
    this.traffic = new TrafficTable(input.config.policies.filter((p): p is TrafficEntry => p.kind === 'TrafficPolicy'), input.config.services);
    this.trustDomain = input.config.trustDomain;
  }

  route(ctx: RequestContext): RouteAction {
    const svc = ctx.connection.service;
    if (!svc) return this.direct(ctx);
    const name = `${svc.service.namespace}/${svc.service.name}`;
    const key = `${name}:${svc.port.port}`;
    this.budget(key).deposit();
    if (!this.tables.has(name)) return this.plainAction(ctx, key);
    const table = this.tables.lookup(name, svc.port.port, ctx.source.namespace);
    if (table.http.length === 0 && table.grpc.length === 0) return this.plainAction(ctx, key);
    const q = ctx.path.indexOf('?');
    const path = q < 0 ? ctx.path : ctx.path.slice(0, q);
    const mi: MatchInput = { method: ctx.method, path, query: q < 0 ? '' : ctx.path.slice(q + 1), header: (n) => ctx.header(n) };
    const entry = matchRoute(table, mi, ctx.protocol === 'grpc');
    if (!entry) {
      this.metrics?.unmatched(this.serviceLabel(svc.service.namespace, svc.service.name));
      return { kind: 'respond', status: 404, flag: 'NR', grpcStatus: 12, grpcMessage: 'no route matched' };
    }
    let ra = this.ruleActions.get(entry);
    if (!ra) this.ruleActions.set(entry, (ra = this.compileRule(entry, key, svc.service.namespace, svc.service.name)));
    if (ra.redirect) {
      const loc = redirectLocation(ra.redirect, { scheme: ctx.scheme, authority: ctx.authority, path, search: q < 0 ? '' : ctx.path.slice(q), port: svc.port.port }, entry.matcher.prefix);
      return { kind: 'respond', status: ra.redirect.statusCode, headers: [['location', loc]], routeName: entry.routeName };
    }
    if (ra.rewrite?.path) {
      const newPath = modifyPath(path, ra.rewrite.path, entry.matcher.prefix) + (q < 0 ? '' : ctx.path.slice(q));
      return { ...ra.forward, rewrite: { ...ra.forward.rewrite, path: newPath } };
    }
    return ra.forward;
  }

  private serviceLabel(ns: string, name: string): string {
    return `${name}.${ns}.svc.${this.trustDomain}`;
  }

  private policy(backendKey: string): CompiledTraffic | undefined {
    return this.traffic.forBackend(backendKey)?.traffic;
  }

  /** The called Service port's budget: state in RuntimeState (survives versions), parameters of this version. */
  private budget(backendKey: string): RetryBudget {
    let b = this.budgets.get(backendKey);
    if (b) return b;
    const cfg: CompiledRetryBudget = this.policy(backendKey)?.retryBudget ?? DEFAULT_RETRY_BUDGET;
    b = this.input.runtime.get(BUDGET_SPACE, backendKey, () => new RetryBudget(cfg));
    const cur = b.config;
    if (cur.percent !== cfg.percent || cur.minRetriesPerSecond !== cfg.minRetriesPerSecond || cur.intervalMs !== cfg.intervalMs) b.configure(cfg);
    this.budgets.set(backendKey, b);
    return b;
  }

  /** A call to a pod IP (or outside the mesh): where it was sent, nothing else. */
  private direct(ctx: RequestContext): RouteAction {
    const b = addressedBackend(this.input, ctx.connection);
    let a = this.plain.get(b.key);
    if (!a) this.plain.set(b.key, (a = { kind: 'forward', backends: [{ backend: b, weight: 1 }] }));
    return a;
  }

  /** A Service call no route applies to: the Service itself, its TrafficPolicy's timeouts and retries. */
  private plainAction(ctx: RequestContext, key: string): ForwardAction {
    let a = this.plain.get(key);
    if (a) return a;
    const b = addressedBackend(this.input, ctx.connection);
    const tp = this.policy(key);
    const svc = ctx.connection.service!;
    a = {
      kind: 'forward',
      backends: [{ backend: b, weight: 1 }],
      ...this.timeouts(undefined, undefined, tp),
      retry: new Retry(tp?.retries ? trafficRetryRule(tp.retries) : DEFAULT_RETRY_RULE, this.budget(key), this.serviceLabel(svc.service.namespace, svc.service.name), this.metrics),
    };
    this.plain.set(key, a);
    return a;
  }

  private timeouts(requestMs: number | undefined, backendRequestMs: number | undefined, tp: CompiledTraffic | undefined): Pick<ForwardAction, 'requestTimeoutMs' | 'backendRequestTimeoutMs' | 'idleTimeoutMs'> {
    const req = requestMs ?? tp?.timeouts?.requestMs;
    const be = backendRequestMs ?? tp?.retries?.perTryTimeoutMs;
    // Gateway API routes have no idle timeout: the Service's TrafficPolicy one applies to routed requests too.
    const idle = tp?.timeouts?.idleMs;
    return { ...(req ? { requestTimeoutMs: req } : {}), ...(be ? { backendRequestTimeoutMs: be } : {}), ...(idle ? { idleTimeoutMs: idle } : {}) };
  }

  private compileRule(entry: TableEntry, key: string, ns: string, name: string): RuleAction {
    const rule = entry.rule;
    const tp = this.policy(key);
    const label = this.serviceLabel(ns, name);
    const backends: WeightedBackend[] = rule.backends.map((b) => {
      const backend = b.unresolved ? undefined : this.input.backends.service(b.service, b.port);
      const req = filterOf(b.filters, 'RequestHeaderModifier');
      const res = filterOf(b.filters, 'ResponseHeaderModifier');
      return { backend, weight: b.weight, ...(req ? { requestHeaders: edits(req.modifier) } : {}), ...(res ? { responseHeaders: edits(res.modifier) } : {}) };
    });
    const reqMod = filterOf(rule.filters, 'RequestHeaderModifier');
    const resMod = filterOf(rule.filters, 'ResponseHeaderModifier');
    const rewrite = filterOf(rule.filters, 'URLRewrite');
    const mirrors: MirrorTarget[] = rule.filters
      .filter((f): f is Extract<RouteFilter, { type: 'RequestMirror' }> => f.type === 'RequestMirror')
      .map((f) => {
        const mirrorLabel = `${f.backend.service}:${f.backend.port}`;
        const m = this.metrics;
        return {
          backend: f.backend.unresolved ? undefined : this.input.backends.service(f.backend.service, f.backend.port),
          name: f.backend.service,
          percent: f.percent,
          count: m ? (result: 'sent' | 'failed' | 'skipped') => m.mirror(label, mirrorLabel, result) : () => {},
        };
      });
    const retryRule = rule.retry ? routeRetryRule(rule.retry) : tp?.retries ? trafficRetryRule(tp.retries) : DEFAULT_RETRY_RULE;
    const forward: RoutedForward = {
      kind: 'forward',
      routeName: entry.routeName,
      backends,
      ...this.timeouts(rule.timeouts.requestMs, rule.timeouts.backendRequestMs, tp),
      retry: new Retry(retryRule, this.budget(key), label, this.metrics),
      ...(reqMod ? { requestHeaders: edits(reqMod.modifier) } : {}),
      ...(resMod ? { responseHeaders: edits(resMod.modifier) } : {}),
      ...(rewrite?.hostname ? { rewrite: { authority: rewrite.hostname } } : {}),
      ...(mirrors.length > 0 ? { mirrors } : {}),
    };
    const redirect = filterOf(rule.filters, 'RequestRedirect');
    return { forward, ...(redirect ? { redirect } : {}), ...(rewrite ? { rewrite } : {}) };
  }
}

/** Counts route timeouts (504 with UT) per called Service and rule; an Observer for the pipeline. */
export function routingObserver(metrics: RoutingMetrics, trustDomain: () => string): (input: StageInput) => Observer {
  return () => ({
    request(ctx) {
      const o = ctx.outcome;
      if (o.status !== 504 || !o.flags.includes('UT') || ctx.side !== 'source') return;
      const s = ctx.connection.service?.service;
      metrics.timeout(s ? `${s.name}.${s.namespace}.svc.${trustDomain()}` : 'unknown', o.routeName ?? '');
    },
  });
}
