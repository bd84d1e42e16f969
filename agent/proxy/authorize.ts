// The policy seam. Every delivery to a local pod, whether it arrived through the tunnel or from a pod on
// this node, asks `authorize` first: once per connection for plain TCP, once per request for HTTP (with
// `request`). The default allows everything; the agent supplies the real one (agent/authz/authorizer.ts).
import type { Workload } from '../../common/mesh.js';

/** What an HTTP request exposes to policy (methods, paths, hosts, headers). */
export interface AuthorizeRequest {
  method: string;
  /** path without the query string */
  path: string;
  /** :authority or Host */
  host: string;
  /** value of a header by lower-case name (several values joined with ","), undefined when absent */
  header(name: string): string | undefined;
}

export interface AuthorizeContext {
  /** SPIFFE ID of the source: the verified peer certificate (tunnel) or the source pod's service account (same node) */
  sourcePrincipal: string | undefined;
  /** the source pod when known (same node: from the kernel's cgroup id) */
  sourceWorkload: Workload | undefined;
  /** the source address as the destination sees it (the source pod's IP when proven, else the peer's) */
  sourceIp?: string;
  /** the destination pod, always on this node */
  destination: Workload;
  /** the pod address connected to (default: the pod's first IP) */
  destinationIp?: string;
  destinationPort: number;
  /** true when the source's identity was proven by mTLS */
  mtls: boolean;
  /** present when a single HTTP request is being authorized */
  request?: AuthorizeRequest;
  /**
   * How to close this connection (or stream) should a later policy version deny it. Given, an allowed
   * connection is watched until `release` of the decision is called.
   */
  revoke?: (why: { policy: string | undefined; reason: string }) => void;
}

export interface AuthorizeDecision {
  allow: boolean;
  /** why, for the log line and the metric; e.g. the name of the policy that denied */
  reason?: string;
  /** "<namespace>/<name>" of the deciding policy, when one decided */
  policy?: string;
  /** call once when the connection or stream ends (only set when `revoke` was given and it was allowed) */
  release?: () => void;
}

export type Authorizer = (ctx: AuthorizeContext) => AuthorizeDecision | Promise<AuthorizeDecision>;

export const allowAll: Authorizer = () => ({ allow: true });
