// Compiled policy: what the controller turns AuthorizationPolicy, HTTPRoute/GRPCRoute and TrafficPolicy
// objects into before they reach a node. Agents never read raw specs: selectors are resolved, principals
// normalised to spiffe:// IDs, durations to milliseconds, routes to backends. Each entry is plain JSON data,
// carried on the wire as one PolicyObject (key + JSON) so the config stream's deltas work per entry.
//
// Each kind's payload type lives in its own file under common/policy/ and is owned by the feature that
// enforces it (authz: issue 11, routes: issue 12, traffic: issue 13).
import type { CompiledAuthz } from './policy/authz.js';
import type { CompiledRoute } from './policy/route.js';
import type { CompiledTraffic } from './policy/traffic.js';

interface EntryBase {
  /** stable identity of the entry across versions: "<kind>/<namespace>/<name>" (see policyEntryKey) */
  key: string;
  /** the object it was compiled from, for messages, metrics and status */
  namespace: string;
  name: string;
}

export interface AuthzEntry extends EntryBase {
  kind: 'AuthorizationPolicy';
  authz: CompiledAuthz;
}

export interface RouteEntry extends EntryBase {
  kind: 'HTTPRoute' | 'GRPCRoute';
  route: CompiledRoute;
}

export interface TrafficEntry extends EntryBase {
  kind: 'TrafficPolicy';
  traffic: CompiledTraffic;
}

export type CompiledPolicy = AuthzEntry | RouteEntry | TrafficEntry;

export function policyEntryKey(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}
