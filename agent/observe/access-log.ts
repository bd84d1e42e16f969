// Access logs, opt in per pod (annotation weft.io/access-log: json on the Pod or its Namespace; the controller
// resolves it into Workload.accessLog). Each proxy that handles an opted-in pod's traffic writes one JSON line
// per HTTP request and per TCP connection, as ztunnel and Envoy do: outbound on the caller's node when the
// caller opted in, inbound on the destination's node when the destination did (same node: both lines, from
// one proxy). Fields are ztunnel's connection fields (src.*, dst.*, direction, bytes, duration) plus, for
// HTTP, Envoy's request fields, the route and the policy that decided, and the caller's trace id (W3C
// traceparent or B3). Nothing is computed for pods that did not opt in: with none on this node the
// observer has no methods at all.
import type { Logger } from '../../common/log.js';
import type { Workload } from '../../common/mesh.js';
import type { MeshState } from '../state/mesh-state.js';
import type { ConnectionContext, RequestContext } from '../pipeline/context.js';
import type { Observer, StageInput } from '../pipeline/stages.js';
import { flagsLabel } from '../metrics/response-labels.js';

type Direction = 'outbound' | 'inbound';

export function accessLogObserver(log: Logger): (input: StageInput) => Observer {
  return (input) => {
    const { state } = input;
    const here = state.nodeName;
    // by uid, from this version's config: a connection opened before the annotation changed holds the
    // workload object of its own time
    const opted = new Set(input.config.workloads.filter((w) => w.accessLog === 'json' && w.node === here).map((w) => w.uid));
    if (opted.size === 0) return {};
    const on = (w: Workload | undefined) => w !== undefined && opted.has(w.uid);
    return {
      request(ctx) {
        const c = ctx.connection;
        if (c.side === 'source' && on(c.source.workload)) log.info('request', requestLine(state, ctx, 'outbound'));
        // inbound: through the tunnel (destination side), or same node (this proxy ran the destination half)
        if ((c.side === 'destination' || ctx.destinationLabels) && on(ctx.destination)) log.info('request', requestLine(state, ctx, 'inbound'));
      },
      connection(ctx, received, sent) {
        if (ctx.side === 'source' && on(ctx.source.workload)) log.info('connection', connectionLine(state, ctx, 'outbound', received, sent));
        if (on(ctx.destination)) log.info('connection', connectionLine(state, ctx, 'inbound', received, sent));
      },
    };
  };
}

function peerFields(state: MeshState, c: ConnectionContext, dst: Workload | undefined, dstAddr: string, direction: Direction): Record<string, unknown> {
  const src = c.source;
  const svc = c.service?.service;
  return {
    node: state.nodeName,
    direction,
    'src.addr': src.ip,
    'src.workload': src.workload?.workloadName ?? null,
    'src.namespace': src.namespace ?? null,
    'src.identity': src.principal ?? null,
    'dst.addr': dstAddr,
    'dst.service': svc ? `${svc.name}.${svc.namespace}.svc.${state.trustDomain}` : null,
    'dst.workload': dst?.workloadName ?? null,
    'dst.namespace': dst?.namespace ?? null,
    'dst.identity': dst ? state.identityOf(dst) : null,
  };
}

function requestLine(state: MeshState, ctx: RequestContext, direction: Direction): Record<string, unknown> {
  const o = ctx.outcome;
  const c = ctx.connection;
  return {
    ...peerFields(state, c, ctx.destination, o.endpoint ?? `${c.original.ip}:${c.original.port}`, direction),
    protocol: ctx.protocol,
    method: ctx.method,
    authority: ctx.authority,
    path: ctx.path,
    status: o.status,
    ...(o.grpcStatus !== undefined ? { grpc_status: o.grpcStatus } : {}),
    response_flags: flagsLabel(o.flags),
    route: o.routeName ?? null,
    policy: o.policyName ?? null,
    attempts: o.attempts,
    bytes_recv: o.bytesReceived,
    bytes_sent: o.bytesSent,
    duration_ms: Math.round((o.endMs - o.startMs) * 1000) / 1000,
    // with tracing on, the context this proxy forwards (and its spans carry); else the caller's
    trace_id: ctx.trace?.traceId ?? traceId(ctx),
  };
}

function connectionLine(state: MeshState, ctx: ConnectionContext, direction: Direction, received: number, sent: number): Record<string, unknown> {
  const ip = ctx.destination?.ips[0] ?? ctx.original.ip;
  const port = ctx.destinationPort || ctx.original.port;
  return {
    ...peerFields(state, ctx, ctx.destination, ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`, direction),
    protocol: ctx.protocol,
    bytes_recv: received,
    bytes_sent: sent,
  };
}

/** The caller's trace id: W3C traceparent (version-traceid-parentid-flags), else B3's x-b3-traceid / b3. */
export function traceId(ctx: RequestContext): string | null {
  const tp = ctx.header('traceparent');
  if (tp) {
    const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}/.exec(tp.trim());
    if (m && m[1] !== '0'.repeat(32)) return m[1]!;
  }
  const b3 = ctx.header('x-b3-traceid') ?? ctx.header('b3')?.split('-')[0];
  return b3 && /^[0-9a-f]{16}([0-9a-f]{16})?$/.test(b3) ? b3 : null;
}
