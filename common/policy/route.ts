// Compiled HTTPRoute / GRPCRoute (Gateway API v1, mesh profile "GAMMA"; issue 12): what an agent needs to
// route a request, with nothing left to interpret. parentRefs are resolved to Services, backendRefs to
// Services with ports (or marked unresolved with the Gateway API reason), header names lower-cased,
// durations in milliseconds, GRPCRoute matches turned into the HTTP/2 path they stand for. Plain JSON.

/** Gateway API string match; `name` is lower-case for headers (names are case-insensitive). */
export interface StringMatch {
  type: 'Exact' | 'RegularExpression';
  name: string;
  value: string;
}

export interface PathMatch {
  type: 'Exact' | 'PathPrefix' | 'RegularExpression';
  value: string;
}

/** One HTTPRouteMatch (all conditions ANDed). GRPCRoute matches compile to this too. */
export interface CompiledMatch {
  /** always present: a match without a path is PathPrefix "/" (the Gateway API default) */
  path: PathMatch;
  headers: StringMatch[];
  queryParams: StringMatch[];
  method?: string;
  /** GRPCRoute only: the service and method as written, for precedence (characters matched) */
  grpc?: { service?: string; method?: string; type: 'Exact' | 'RegularExpression' };
}

export interface HeaderModifier {
  /** [name as written, value]; replaced whatever the request carried */
  set: [string, string][];
  /** appended (a comma-joined value when the header exists, as the Gateway API specifies) */
  add: [string, string][];
  /** lower-case names */
  remove: string[];
}

export type PathModifier = { type: 'ReplaceFullPath'; value: string } | { type: 'ReplacePrefixMatch'; value: string };

export type RouteFilter =
  | { type: 'RequestHeaderModifier'; modifier: HeaderModifier }
  | { type: 'ResponseHeaderModifier'; modifier: HeaderModifier }
  | { type: 'RequestRedirect'; scheme?: 'http' | 'https'; hostname?: string; port?: number; path?: PathModifier; statusCode: 301 | 302 | 303 | 307 | 308 }
  | { type: 'URLRewrite'; hostname?: string; path?: PathModifier }
  | { type: 'RequestMirror'; backend: BackendTarget; percent: number };

/** A Service backend: where the agent sends the request (or why it cannot). */
export interface BackendTarget {
  /** "<namespace>/<name>" of the Service */
  service: string;
  /** the Service port */
  port: number;
  /** set when the reference cannot be resolved (Gateway API ResolvedRefs reasons): the agent answers 500 */
  unresolved?: 'BackendNotFound' | 'InvalidKind';
}

export interface CompiledBackend extends BackendTarget {
  /** share = weight / sum of the rule's weights; 0 never gets traffic */
  weight: number;
  /** per-backend filters (header modifiers only, per the Gateway API's core support) */
  filters: RouteFilter[];
}

export interface RouteTimeouts {
  /** whole exchange, retries included; 0 = disabled; undefined = not set (TrafficPolicy's value applies) */
  requestMs?: number;
  /** one try; 0 = disabled; undefined = not set */
  backendRequestMs?: number;
}

/** GEP-1731: `attempts` retries after the first try, on `codes`, waiting at least `backoffMs` between tries. */
export interface RouteRetry {
  attempts: number;
  /** HTTP status codes that are retried; empty = only connection failures and resets */
  codes: number[];
  backoffMs: number;
}

export interface CompiledRule {
  /** spec.rules[i].name, or "rule-<i>" */
  name: string;
  /** index in spec.rules: the last precedence tie-break */
  index: number;
  /** ORed; never empty (no matches = PathPrefix "/") */
  matches: CompiledMatch[];
  filters: RouteFilter[];
  /** empty with no redirect filter: the rule answers 500 (Gateway API: no backends) */
  backends: CompiledBackend[];
  timeouts: RouteTimeouts;
  retry?: RouteRetry;
}

export interface RouteParent {
  /** "<namespace>/<name>" of the Service */
  service: string;
  /** only this Service port; every port when undefined */
  port?: number;
}

export interface CompiledRoute {
  /** Services this route attaches to */
  parents: RouteParent[];
  /** the route's own namespace: a route in another namespace than its parent applies only to callers here */
  namespace: string;
  /** creationTimestamp in ms, for precedence (oldest first) */
  createdMs: number;
  rules: CompiledRule[];
}

/** Gateway API route condition, as Kubernetes conditions look (operators read it in the CLI and page). */
export interface RouteCondition {
  type: 'Accepted' | 'ResolvedRefs';
  status: 'True' | 'False';
  reason: string;
  message: string;
}

/** One route's status per parent, as the controller's JSON API serves it (see docs/routing.md). */
export interface RouteStatus {
  kind: 'HTTPRoute' | 'GRPCRoute';
  namespace: string;
  name: string;
  parents: { service: string; port?: number; conditions: RouteCondition[] }[];
  /** every backendRef (rules and mirrors) that cannot be resolved, with where it is */
  unresolvedBackends: { field: string; service: string; port: number; reason: string }[];
}
