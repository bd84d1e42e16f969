// Compiled HTTPRoute / GRPCRoute (issue 12 owns and refines this shape): parentRefs resolved to Services,
// backends to Services with ports, durations in milliseconds.
export interface CompiledRoute {
  /** Services this route attaches to ("<namespace>/<name>", optional port) */
  parents: { service: string; port?: number }[];
  /** a route in another namespace than its parent applies only to callers in its own namespace */
  namespace: string;
  /** creationTimestamp in ms, for precedence (oldest first) */
  createdMs: number;
  rules: unknown[];
}
