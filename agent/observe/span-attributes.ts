// What a proxy hop's span says, under the names Envoy's tracers give its tags (and Istio's span naming), so
// trace views built for Istio read Weft's spans unchanged. Values are strings, as Envoy's OpenTelemetry
// tracer exports its tags. The client span (source proxy) describes the call to the destination; the server
// span (destination proxy) the call from the source.
import type { Attributes } from '@opentelemetry/api';
import type { MeshState } from '../state/mesh-state.js';
import type { RequestContext } from '../pipeline/context.js';
import { flagsLabel } from '../metrics/response-labels.js';

/** Istio's span name: the destination Service's FQDN and port, `/*` (else the address called). */
export function spanName(state: MeshState, ctx: RequestContext): string {
  const c = ctx.connection;
  const svc = c.service;
  if (svc) return `${svc.service.name}.${svc.service.namespace}.svc.${state.trustDomain}:${svc.port.port}/*`;
  return `${c.original.ip}:${c.original.port}/*`;
}

/** Envoy's cluster names as Istio builds them: outbound|port||fqdn on the caller's side, inbound|port|| at the destination. */
function upstreamCluster(state: MeshState, ctx: RequestContext, side: 'client' | 'server'): string {
  const c = ctx.connection;
  if (side === 'server') return `inbound|${ctx.destinationPort || c.original.port}||`;
  const svc = c.service;
  return svc ? `outbound|${svc.port.port}||${svc.service.name}.${svc.service.namespace}.svc.${state.trustDomain}` : `PassthroughCluster`;
}

const PROTOCOL: Record<RequestContext['protocol'], string> = { http1: 'HTTP/1.1', http2: 'HTTP/2', grpc: 'HTTP/2' };

export function spanAttributes(state: MeshState, ctx: RequestContext, side: 'client' | 'server'): Attributes {
  const o = ctx.outcome;
  const c = ctx.connection;
  const src = c.source;
  const dst = ctx.destination;
  const a: Attributes = {
    component: 'proxy',
    node_id: state.nodeName,
    'http.method': ctx.method,
    'http.url': `${ctx.scheme}://${ctx.authority}${ctx.path}`,
    'http.protocol': PROTOCOL[ctx.protocol],
    'http.status_code': String(o.status),
    response_flags: flagsLabel(o.flags),
    upstream_cluster: upstreamCluster(state, ctx, side),
    'upstream_cluster.name': upstreamCluster(state, ctx, side),
    'peer.address': src.ip,
    request_size: String(o.bytesReceived),
    response_size: String(o.bytesSent),
    // the identities on both ends: the caller's from its cgroup or its certificate, the destination's from config
    'source.principal': src.principal ?? '-',
    'destination.principal': dst ? state.identityOf(dst) : '-',
  };
  if (o.endpoint) a.upstream_address = o.endpoint;
  const ua = ctx.header('user-agent');
  if (ua) a.user_agent = ua;
  const w = side === 'client' ? src.workload : dst;
  if (w) {
    a['istio.namespace'] = w.namespace;
    a['istio.canonical_service'] = w.labels['service.istio.io/canonical-name'] ?? w.labels['app.kubernetes.io/name'] ?? w.labels['app'] ?? w.workloadName;
  }
  if (o.grpcStatus !== undefined) a['grpc.status_code'] = String(o.grpcStatus);
  if (o.routeName) a['weft.route'] = o.routeName;
  if (o.policyName) a['weft.policy'] = o.policyName;
  if (isError(ctx)) a.error = 'true';
  return a;
}

/** Envoy marks a span failed for a 5xx, or a gRPC call that ended with a status other than OK. */
export function isError(ctx: RequestContext): boolean {
  const o = ctx.outcome;
  return o.status >= 500 || o.status === 0 || (o.grpcStatus !== undefined && o.grpcStatus !== 0);
}
