// Route tables of one config version: for each (Service, port, caller namespace) the rules of every
// attached route, in Gateway API precedence order, so a request takes the first rule that matches.
//
// Attachment (GAMMA, GEP-1294): a route attaches to a Service through a parentRef (one port or all). A
// route in the Service's namespace is a producer route and applies to every caller; a route in another
// namespace is a consumer route and applies only to callers in its own namespace, and where a caller's
// namespace has consumer routes for a Service, those replace the producer routes for that caller.
//
// Precedence across all rules of all attached routes (HTTPRouteRule): Exact path, then PathPrefix with the
// most characters, (RegularExpression paths after every prefix: implementation-specific in the spec), then
// a method match, the most header matches, the most query matches, then the oldest route, then
// "<namespace>/<name>" alphabetically, then rule order, then match order. GRPCRoute (GRPCRouteRule): the
// most characters of matched service, then of matched method, then the most header matches, then the same
// tie-breaks. gRPC requests use the GRPCRoute rules when the Service has any, else the HTTPRoute rules.
import type { MeshConfig } from '../../common/mesh.js';
import type { RouteEntry } from '../../common/policy.js';
import type { CompiledMatch, CompiledRule } from '../../common/policy/route.js';
import { compileMatch, type MatchInput, type Matcher } from './match.js';

export interface TableEntry {
  readonly route: RouteEntry;
  readonly rule: CompiledRule;
  readonly matcher: Matcher;
  /** "<ns>/<name>#<rule name>", for logs, metrics and the access log */
  readonly routeName: string;
}

export interface RouteTable {
  readonly http: readonly TableEntry[];
  readonly grpc: readonly TableEntry[];
}

/** The first rule (in precedence order) whose match the request satisfies; undefined: 404. */
export function matchRoute(table: RouteTable, req: MatchInput, isGrpc: boolean): TableEntry | undefined {
  const list = isGrpc && table.grpc.length > 0 ? table.grpc : table.http.length > 0 ? table.http : table.grpc;
  for (const e of list) if (e.matcher.test(req)) return e;
  return undefined;
}

interface Ranked extends TableEntry {
  key: (number | string)[];
}

const PATH_EXACT = 0;
const PATH_PREFIX = 1;
const PATH_REGEX = 2;

/** Sort key, ascending = higher precedence. */
function httpKey(m: CompiledMatch): (number | string)[] {
  const kind = m.path.type === 'Exact' ? PATH_EXACT : m.path.type === 'PathPrefix' ? PATH_PREFIX : PATH_REGEX;
  const len = m.path.type === 'RegularExpression' ? 0 : m.path.value.length;
  return [kind, -len, m.method ? 0 : 1, -m.headers.length, -m.queryParams.length];
}

function grpcKey(m: CompiledMatch): (number | string)[] {
  return [-(m.grpc?.service?.length ?? 0), -(m.grpc?.method?.length ?? 0), -m.headers.length];
}

function compareKeys(a: (number | string)[], b: (number | string)[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x < y) return -1;
    if (x > y) return 1;
  }
  return 0;
}

function rank(routes: readonly RouteEntry[], grpc: boolean): TableEntry[] {
  const out: Ranked[] = [];
  for (const route of routes) {
    for (const rule of route.route.rules) {
      rule.matches.forEach((m, mi) => {
        out.push({
          route,
          rule,
          matcher: compileMatch(m),
          routeName: `${route.namespace}/${route.name}#${rule.name}`,
          key: [...(grpc ? grpcKey(m) : httpKey(m)), route.route.createdMs, `${route.namespace}/${route.name}`, rule.index, mi],
        });
      });
    }
  }
  out.sort((a, b) => compareKeys(a.key, b.key));
  return out.map(({ key: _key, ...e }) => Object.freeze(e));
}

const EMPTY: RouteTable = Object.freeze({ http: [], grpc: [] });

export class RouteTables {
  /** "<ns>/<svc>" -> every route with a parentRef to it, with the parent's port (undefined: all ports) */
  private readonly attached = new Map<string, { route: RouteEntry; port: number | undefined }[]>();
  private readonly tables = new Map<string, RouteTable>();

  constructor(config: Pick<MeshConfig, 'policies'>) {
    for (const p of config.policies) {
      if (p.kind !== 'HTTPRoute' && p.kind !== 'GRPCRoute') continue;
      for (const parent of p.route.parents) {
        let l = this.attached.get(parent.service);
        if (!l) this.attached.set(parent.service, (l = []));
        l.push({ route: p, port: parent.port });
      }
    }
  }

  /** Whether any route attaches to the Service at all (the common "no routes" case costs one lookup). */
  has(service: string): boolean {
    return this.attached.has(service);
  }

  /** The table for calls from `callerNs` to Service `service` ("<ns>/<name>") on `port`; empty when no route applies. */
  lookup(service: string, port: number, callerNs: string | undefined): RouteTable {
    const all = this.attached.get(service);
    if (!all) return EMPTY;
    const key = `${service}|${port}|${callerNs ?? ''}`;
    let t = this.tables.get(key);
    if (t) return t;
    const serviceNs = service.slice(0, service.indexOf('/'));
    const onPort = all.filter((a) => a.port === undefined || a.port === port);
    const consumer = callerNs !== undefined && callerNs !== serviceNs ? onPort.filter((a) => a.route.namespace === callerNs) : [];
    const chosen = consumer.length > 0 ? consumer : onPort.filter((a) => a.route.namespace === serviceNs);
    const routes = [...new Set(chosen.map((a) => a.route))];
    t = routes.length === 0 ? EMPTY : Object.freeze({ http: rank(routes.filter((r) => r.kind === 'HTTPRoute'), false), grpc: rank(routes.filter((r) => r.kind === 'GRPCRoute'), true) });
    // bounded by services x ports x namespaces that actually call; cleared with the version
    this.tables.set(key, t);
    return t;
  }
}
