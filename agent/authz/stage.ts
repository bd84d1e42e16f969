// The pipeline's Authorizer stage (agent/pipeline/stages.ts) over the PolicyEnforcer: maps the pipeline's
// connection and request contexts to the evaluator's input. Admission decisions go through the enforcer
// (metrics, audit and dry-run reports); re-evaluation of open connections on a new config version (the
// pipeline's LiveRegistry) goes through enforcer.recheck: not a new admission, a denial counted as revoked.
import type { ConnectionContext, RequestContext } from '../pipeline/context.js';
import type { AuthzDecision, Authorizer } from '../pipeline/stages.js';
import type { AuthorizeContext, AuthorizeDecision, AuthorizeRequest } from '../proxy/authorize.js';
import type { PolicyEnforcer } from './enforcer.js';

const ALLOW: AuthzDecision = Object.freeze({ allow: true });

function requestOf(ctx: RequestContext): AuthorizeRequest {
  const q = ctx.path.indexOf('?');
  return { method: ctx.method, path: q < 0 ? ctx.path : ctx.path.slice(0, q), host: ctx.authority, header: (n) => ctx.header(n) };
}

function legacy(conn: ConnectionContext, req: RequestContext | undefined): AuthorizeContext | undefined {
  const destination = req ? req.destination : conn.destination;
  if (!destination) return undefined;
  const port = req ? req.destinationPort : conn.destinationPort;
  return {
    sourcePrincipal: conn.source.principal,
    sourceWorkload: conn.source.workload,
    sourceIp: conn.source.ip || undefined,
    destination,
    destinationPort: port,
    mtls: conn.source.identity === 'mtls',
    ...(req ? { request: requestOf(req) } : {}),
  };
}

function toDecision(d: AuthorizeDecision): AuthzDecision {
  return d.allow ? (d.policy ? { allow: true, policy: d.policy } : ALLOW) : { allow: false, ...(d.policy ? { policy: d.policy } : {}) };
}

export function authzStage(enforcer: PolicyEnforcer): () => Authorizer {
  const decide = (conn: ConnectionContext, req: RequestContext | undefined): AuthzDecision => {
    const c = legacy(conn, req);
    return c ? toDecision(enforcer.decide(c)) : ALLOW;
  };
  return () => ({
    // A connection that carries HTTP decided per request (same node) is not judged on L4 attributes alone:
    // an ALLOW rule with HTTP fields would never match it. Plain TCP (and tunnel streams, until the
    // destination parses their requests) is.
    connection: (ctx) => (ctx.protocol !== 'tcp' ? ALLOW : decide(ctx, undefined)),
    request: (ctx) => decide(ctx.connection, ctx),
    reevaluate(ctx) {
      const isReq = 'method' in ctx;
      const conn = isReq ? ctx.connection : ctx;
      if (!isReq && conn.protocol !== 'tcp') return ALLOW;
      const c = legacy(conn, isReq ? ctx : undefined);
      return c ? toDecision(enforcer.recheck(c)) : ALLOW;
    },
  });
}
