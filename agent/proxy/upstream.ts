// Opening the L4 upstream for a route: a TCP connection to a pod on this node (the pipeline authorized it),
// a CONNECT stream through the tunnel to the pod's node, or a plain TCP connection to a pod outside
// the mesh. The proxy's own sockets live in the node's network namespace, which capture never rewrites,
// so delivering to a local pod does not loop back into the outbound listener.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../common/log.js';
import type { NodeInfo } from '../../common/mesh.js';
import type { AgentMetrics } from '../metrics/agent-health.js';
import type { ConnectionContext } from '../pipeline/context.js';
import type { Route } from './destination.js';
import { UpstreamError } from './errors.js';
import type { TunnelAddress, TunnelPool } from './pool.js';
import type { PodConnector } from './transparent.js';

export interface UpstreamOptions {
  pool: TunnelPool;
  log: Logger;
  metrics: AgentMetrics;
  connectTimeoutMs: number;
  /** connects to a pod on this node (transparent.ts: from the caller's address); default plain TCP from the node */
  podConnect?: PodConnector;
  /** where a node's tunnel listener is (production: node ip, 15008; tests: anything) */
  tunnelAddress: (node: NodeInfo) => TunnelAddress;
}

/** A TCP connection to ip:port, resolved once connected. Half-open allowed so half-close is faithful. */
export function connectTcp(ip: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: ip, port, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(() => s.destroy(new UpstreamError('connect_timeout', `connect to ${ip}:${port} timed out after ${timeoutMs} ms`)), timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err instanceof UpstreamError ? err : new UpstreamError('connect_failed', `connect to ${ip}:${port} failed: ${err.message}`, { cause: err }));
    });
  });
}

export class Upstreams {
  constructor(private readonly opts: UpstreamOptions) {}

  /** Baggage for the peer proxy's destination-side metrics (W3C baggage, the keys Istio uses). */
  baggage(ctx: ConnectionContext): string {
    const s = ctx.source.workload;
    const parts = [];
    if (s) parts.push(`k8s.namespace.name=${s.namespace}`, `k8s.workload.name=${s.workloadName}`);
    if (ctx.service) parts.push(`service.name=${ctx.service.service.name}.${ctx.service.service.namespace}`);
    return parts.join(',');
  }

  /** Opens a CONNECT stream through the tunnel to a route's pod, announcing what it carries (x-weft-protocol). */
  tunnelStream(ctx: ConnectionContext, route: Route, protocol: 'tcp' | 'http1' | 'h2'): Promise<Duplex> {
    if (!ctx.source.principal) return Promise.reject(new UpstreamError('unknown_source', `no identity for the source of a connection to ${route.ip}:${route.port}: its cgroup is not an enrolled pod`));
    const stream = this.opts.pool.connect({
      sourceId: ctx.source.principal,
      destinationId: route.destinationId!,
      node: this.opts.tunnelAddress(route.node!),
      authority: authority(route.ip, route.port),
      headers: { baggage: this.baggage(ctx), [PROTOCOL_HEADER]: protocol, ...forwardedFor(ctx, route.ip) },
    });
    // The connect timeout (the Service's, else the proxy's) covers the whole CONNECT: its 200 comes once the
    // peer reached the pod, and a peer that never answers must not hold the request.
    return withDeadline(stream, route.limits?.connectTimeoutMs ?? this.opts.connectTimeoutMs, `tunnel stream to ${route.ip}:${route.port}`);
  }

  /**
   * The L4 upstream for one route (the pipeline already authorized a same-node delivery): a TCP connection
   * to a pod on this node or outside the mesh, or a CONNECT stream through the tunnel.
   */
  open(ctx: ConnectionContext, route: Route, protocol: 'tcp' | 'http1' | 'h2' = 'tcp'): Promise<Duplex> {
    if (route.kind === 'tunnel') return this.tunnelStream(ctx, route, protocol);
    const timeoutMs = route.limits?.connectTimeoutMs ?? this.opts.connectTimeoutMs;
    if (route.kind === 'local' && this.opts.podConnect) return this.opts.podConnect({ sourceIp: sourceIpFor(ctx, route.ip), ip: route.ip, port: route.port, timeoutMs });
    return connectTcp(route.ip, route.port, timeoutMs);
  }
}

/** `p`, or a connect_timeout failure after `ms`; a stream that `p` still yields after that is closed. */
export function withDeadline<T extends { destroy(): unknown }>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(new UpstreamError('connect_timeout', `${what}: not connected after ${ms} ms (TrafficPolicy connectionPool.tcp.connectTimeout, else the proxy's connect timeout)`));
    }, ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        if (late) v.destroy();
        else resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        if (!late) reject(err);
      },
    );
  });
}

/** CONNECT request header saying what the stream carries, so the destination proxy can parse HTTP heads. */
export const PROTOCOL_HEADER = 'x-weft-protocol';

/** The source pod's address of the destination's family (what the destination sees as the peer). */
export function sourceIpFor(ctx: ConnectionContext, dstIp: string): string | undefined {
  const ips = ctx.source.workload?.ips ?? [];
  const v6 = dstIp.includes(':');
  return ips.find((ip) => ip.includes(':') === v6) ?? ips[0];
}

/**
 * RFC 7239 Forwarded: tells the destination proxy the source pod's address (policy ipBlocks, source.ip). The
 * destination believes it only when that address belongs to a workload of the certificate's identity.
 */
export function forwardedFor(ctx: ConnectionContext, dstIp: string): { forwarded?: string } {
  const ip = sourceIpFor(ctx, dstIp);
  return ip ? { forwarded: ip.includes(':') ? `for="[${ip}]"` : `for=${ip}` } : {};
}

export function authority(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
