// Opening the L4 upstream for a route: a TCP connection to a pod on this node (after asking the policy
// hook), a CONNECT stream through the tunnel to the pod's node, or a plain TCP connection to a pod outside
// the mesh. The proxy's own sockets live in the node's network namespace, which capture never rewrites,
// so delivering to a local pod does not loop back into the outbound listener.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../common/log.js';
import type { NodeInfo } from '../../common/mesh.js';
import type { AgentMetrics } from '../metrics/agent-health.js';
import type { AuthorizeContext, Authorizer } from './authorize.js';
import type { Destination, Route } from './destination.js';
import { UpstreamError } from './errors.js';
import type { TunnelAddress, TunnelPool } from './pool.js';

export interface UpstreamOptions {
  pool: TunnelPool;
  authorize: Authorizer;
  log: Logger;
  metrics: AgentMetrics;
  connectTimeoutMs: number;
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
  baggage(dest: Destination): string {
    const s = dest.source;
    const parts = [];
    if (s) parts.push(`k8s.namespace.name=${s.namespace}`, `k8s.workload.name=${s.workloadName}`);
    if (dest.service) parts.push(`service.name=${dest.service.service.name}.${dest.service.service.namespace}`);
    return parts.join(',');
  }

  /**
   * Checks policy for a delivery to a local pod. Throws UpstreamError('denied') when refused. `extra`: the
   * request being delivered (HTTP) and how to close the connection should a later policy deny it; returns
   * the decision's release (call it when the connection ends).
   */
  async authorizeLocal(dest: Destination, route: Route, extra: Pick<AuthorizeContext, 'request' | 'revoke'> = {}): Promise<(() => void) | undefined> {
    if (!route.workload) return undefined;
    const d = await this.opts.authorize({
      sourcePrincipal: dest.sourceId,
      sourceWorkload: dest.source,
      sourceIp: sourceIpFor(dest, route.ip),
      destination: route.workload,
      destinationIp: route.ip,
      destinationPort: route.port,
      mtls: false,
      ...extra,
    });
    if (!d.allow) {
      this.opts.metrics.refused.inc({ direction: 'inbound', reason: 'denied' });
      throw new UpstreamError('denied', `policy denied ${dest.sourceId ?? 'unknown source'} → ${route.workload.namespace}/${route.workload.name}:${route.port}${d.reason ? `: ${d.reason}` : ''}`);
    }
    return d.release;
  }

  /** The L4 upstream for one route. */
  async open(dest: Destination, route: Route): Promise<Duplex> {
    switch (route.kind) {
      case 'local': {
        // L4: the connection is watched; a policy version that denies it later closes it
        let sock: net.Socket | undefined;
        let revoked = false;
        const release = await this.authorizeLocal(dest, route, {
          revoke: () => {
            revoked = true;
            sock?.destroy();
          },
        });
        try {
          sock = await connectTcp(route.ip, route.port, this.opts.connectTimeoutMs);
        } catch (e) {
          release?.();
          throw e;
        }
        if (release) sock.once('close', release);
        if (revoked) sock.destroy();
        return sock;
      }
      case 'passthrough':
        return connectTcp(route.ip, route.port, this.opts.connectTimeoutMs);
      case 'tunnel': {
        if (!dest.sourceId) throw new UpstreamError('unknown_source', `no identity for the source of a connection to ${route.ip}:${route.port}: its cgroup is not an enrolled pod`);
        return this.opts.pool.connect({
          sourceId: dest.sourceId,
          destinationId: route.destinationId!,
          node: this.opts.tunnelAddress(route.node!),
          authority: authority(route.ip, route.port),
          headers: { baggage: this.baggage(dest), ...forwardedFor(dest, route.ip) },
        });
      }
    }
  }
}

/** The source pod's address of the destination's family (what the destination sees as the peer). */
export function sourceIpFor(dest: Destination, dstIp: string): string | undefined {
  const ips = dest.source?.ips ?? [];
  const v6 = dstIp.includes(':');
  return ips.find((ip) => ip.includes(':') === v6) ?? ips[0];
}

/**
 * RFC 7239 Forwarded: tells the destination proxy the source pod's address (policy ipBlocks, source.ip). The
 * destination believes it only when that address belongs to a workload of the certificate's identity.
 */
export function forwardedFor(dest: Destination, dstIp: string): { forwarded?: string } {
  const ip = sourceIpFor(dest, dstIp);
  return ip ? { forwarded: ip.includes(':') ? `for="[${ip}]"` : `for=${ip}` } : {};
}

export function authority(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
