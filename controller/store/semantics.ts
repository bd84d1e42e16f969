// Checks beyond the schema, per kind: what a structural schema cannot say (cross-field rules) and, above
// all, every field or value Weft does not enforce. Those are refused when the object is applied, naming
// the object and the field: nothing is accepted and then ignored. Each kind's checks live in a file of
// their own under controller/store/semantics/ (the feature that enforces the kind owns it); add the
// kind's entry to SEMANTIC_CHECKS below. The store calls them after the schema check.
import type { KubeObject } from '../sources/types.js';
import { checkTrafficPolicy } from './semantics/traffic-policy.js';
import { checkGrpcRoute } from './semantics/grpcroute.js';
import { checkHttpRoute } from './semantics/httproute.js';
import { checkAuthorizationPolicy } from './semantics/authorization-policy.js';
import { checkPeerAuthentication } from './semantics/peer-authentication.js';
import { checkAccessLogAnnotation } from './semantics/access-log.js';
import { checkFailModeAnnotation } from './semantics/fail-mode.js';

/** Throws WeftConfigError(`${where}, field <path>`, why) for the first problem; returns when fine. */
export type SemanticCheck = (obj: KubeObject, where: string) => void;

export const SEMANTIC_CHECKS: Readonly<Record<string, readonly SemanticCheck[]>> = {
  TrafficPolicy: [checkTrafficPolicy],
  HTTPRoute: [checkHttpRoute],
  GRPCRoute: [checkGrpcRoute],
  AuthorizationPolicy: [checkAuthorizationPolicy],
  PeerAuthentication: [checkPeerAuthentication],
  Namespace: [checkAccessLogAnnotation, checkFailModeAnnotation],
  Pod: [checkAccessLogAnnotation, checkFailModeAnnotation],
};
