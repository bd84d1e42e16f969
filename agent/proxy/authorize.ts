// The policy seam. Every delivery to a local pod, whether it arrived through the tunnel or from a pod on
// this node, asks `authorize` first. The default allows everything; the policy issue supplies the real one.
import type { Workload } from '../../common/mesh.js';

export interface AuthorizeContext {
  /** SPIFFE ID of the source: the verified peer certificate (tunnel) or the source pod's service account (same node) */
  sourcePrincipal: string | undefined;
  /** the source pod when known (same node: from the kernel's cgroup id) */
  sourceWorkload: Workload | undefined;
  /** the destination pod, always on this node */
  destination: Workload;
  destinationPort: number;
  /** true when the source's identity was proven by mTLS */
  mtls: boolean;
}

export interface AuthorizeDecision {
  allow: boolean;
  /** why, for the log line and the metric; e.g. the name of the policy that denied */
  reason?: string;
}

export type Authorizer = (ctx: AuthorizeContext) => AuthorizeDecision | Promise<AuthorizeDecision>;

export const allowAll: Authorizer = () => ({ allow: true });
