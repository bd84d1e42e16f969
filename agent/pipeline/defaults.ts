// Stages that reproduce Weft's behaviour before any policy: every request goes to the Service (or pod) it
// was sent to, everything is allowed, endpoints are taken round robin (the cursor lives in RuntimeState,
// so it survives config versions), no limits, no faults, no fallback.
import type { ConnectionContext, RequestContext } from './context.js';
import type { AuthzDecision, Authorizer, Backend, EndpointRef, Permit, Router, RouteAction, StageInput, TrafficStages, WeightedBackend } from './stages.js';

/** The backend a connection was addressed to: its Service port, or the pod (or outside address) itself. */
export function addressedBackend(input: StageInput, ctx: ConnectionContext): Backend {
  const svc = ctx.service;
  if (svc) {
    const b = input.backends.service(`${svc.service.namespace}/${svc.service.name}`, svc.port.port);
    if (b) return b;
  }
  return input.backends.direct(ctx.original.ip, ctx.original.port);
}

export function defaultRouter(input: StageInput): Router {
  // One cached action per addressed backend: route() allocates nothing per request.
  const cache = new WeakMap<Backend, RouteAction>();
  return {
    route(ctx: RequestContext): RouteAction {
      const b = addressedBackend(input, ctx.connection);
      let a = cache.get(b);
      if (!a) {
        const backends: WeightedBackend[] = [{ backend: b, weight: 1 }];
        a = { kind: 'forward', backends };
        cache.set(b, a);
      }
      return a;
    },
  };
}

const ALLOW: AuthzDecision = Object.freeze({ allow: true });

export function allowAllAuthorizer(): Authorizer {
  return { connection: () => ALLOW, request: () => ALLOW };
}

const NO_PERMIT: Permit = Object.freeze({ release() {} });

interface Cursor {
  n: number;
}

/** Round robin per backend key, skipping endpoints already tried by this request. */
export function roundRobinTraffic(input: StageInput): TrafficStages {
  const runtime = input.runtime;
  const newCursor = (): Cursor => ({ n: 0 });
  return {
    fault: () => undefined,
    admit: () => undefined,
    pick(_ctx, backend, tried): EndpointRef | undefined {
      const eps = backend.endpoints;
      if (eps.length === 0) return undefined;
      const c = runtime.get('rr', backend.key, newCursor);
      for (let i = 0; i < eps.length; i++) {
        const ep = eps[c.n++ % eps.length]!;
        if (c.n >= 1 << 30) c.n = 0;
        if (tried.length === 0 || !tried.includes(ep.id)) return ep;
      }
      return undefined;
    },
    acquire: () => NO_PERMIT,
    feedback() {},
    fallback: () => undefined,
  };
}
