// The outbound listener (15001): connections the kernel redirected from pods on this node. For each one:
// ask capture where it was going and which pod opened it, resolve that to endpoints, detect the protocol,
// then proxy it as HTTP (per request) or opaque TCP (per connection).
import net, { type Socket } from 'node:net';
import type { ConnectionLookup } from '../../common/capture.js';
import type { Logger } from '../../common/log.js';
import type { MeshState } from '../state/mesh-state.js';
import type { AgentMetrics } from '../metrics/agent-health.js';
import type { IstioMetrics } from '../metrics/istio.js';
import type { ConnectionTracker } from './connections.js';
import type { Destination, DestinationResolver } from './destination.js';
import type { Http1Proxy } from './http1.js';
import type { Http2Proxy } from './http2.js';
import { relay, type RelayOptions } from './relay.js';
import { protocolFromAppProtocol, sniff, type Protocol } from './sniff.js';
import type { Upstreams } from './upstream.js';

export interface OutboundOptions {
  state: MeshState;
  lookup: ConnectionLookup;
  resolver: DestinationResolver;
  upstreams: Upstreams;
  metrics: IstioMetrics;
  agentMetrics: AgentMetrics;
  connections: ConnectionTracker;
  http1: Http1Proxy;
  http2: Http2Proxy;
  log: Logger;
  relay: RelayOptions;
  /** how long to wait for a client's first bytes before treating the connection as server-first/opaque */
  sniffTimeoutMs: number;
  maxConnections: number;
}

export function plainIp(ip: string | undefined): string {
  return ip?.startsWith('::ffff:') ? ip.slice(7) : ip ?? '';
}

export class Outbound {
  readonly server: net.Server;

  constructor(private readonly o: OutboundOptions) {
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (s) => {
      this.onConnection(s).catch((err: unknown) => {
        o.log.error('outbound connection failed unexpectedly', { error: err });
        s.destroy();
      });
    });
    this.server.maxConnections = o.maxConnections;
  }

  private refuse(socket: Socket, reason: string, fields: Record<string, unknown>): void {
    this.o.agentMetrics.refused.inc({ direction: 'outbound', reason });
    this.o.log.warn('outbound connection refused', { reason, ...fields });
    socket.resetAndDestroy();
  }

  private async onConnection(socket: Socket): Promise<void> {
    socket.on('error', () => {});
    const peer = { ip: plainIp(socket.remoteAddress), port: socket.remotePort ?? 0 };
    const local = { ip: plainIp(socket.localAddress), port: socket.localPort ?? 0 };
    const original = this.o.lookup.lookup(peer, local);
    if (!original) {
      return this.refuse(socket, 'unknown_connection', { peer: `${peer.ip}:${peer.port}`, hint: 'not redirected by Weft capture (or its record expired); nothing to proxy it to' });
    }
    const source = this.o.state.workloadByCgroup(original.cgroupId);
    const dest = this.o.resolver.resolve(original, source);
    const forced = protocolFromAppProtocol(dest.service?.port.appProtocol);
    let protocol: Protocol;
    if (forced === 'tcp' || forced === 'tls') {
      // Declared opaque: no sniffing, so server-first protocols pay no detection delay.
      protocol = 'tcp';
    } else {
      const r = await sniff(socket, forced ? this.o.relay.idleTimeoutMs || 60_000 : this.o.sniffTimeoutMs);
      if (r.head.length > 0) socket.unshift(r.head);
      protocol = r.protocol;
    }
    this.o.agentMetrics.sniffed.inc({ protocol });
    if (socket.destroyed) return;
    switch (protocol) {
      case 'http1':
        return this.o.http1.handle(socket, dest);
      case 'http2':
        return this.o.http2.handle(socket, dest);
      default:
        return this.tcp(socket, dest);
    }
  }

  private async tcp(socket: Socket, dest: Destination): Promise<void> {
    const route = dest.pick();
    const to = `${dest.original.ip}:${dest.original.port}`;
    if (!route) return this.refuse(socket, 'no_endpoint', { destination: to, service: dest.service?.service.name ?? null });
    let up;
    try {
      up = await this.o.upstreams.open(dest, route);
    } catch (err) {
      return this.refuse(socket, (err as { reason?: string }).reason ?? 'upstream', { destination: to, endpoint: `${route.ip}:${route.port}`, error: err });
    }
    const done = this.o.connections.track('outbound', { source: dest.sourceId ?? 'unknown', destination: to, endpoint: `${route.ip}:${route.port}`, route: route.kind, protocol: 'tcp' }, () => socket.destroy());
    this.o.metrics.tcpOpen(route.labels);
    await relay(socket, up, this.o.relay);
    done();
    this.o.metrics.tcpClose(route.labels, socket.bytesRead, socket.bytesWritten);
  }
}
