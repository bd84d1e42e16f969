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
import { newConnectionContext, sourceFromWorkload, type ConnectionContext } from '../pipeline/context.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { Http1Proxy } from './http1.js';
import type { Http2Proxy } from './http2.js';
import { relay, type RelayOptions } from './relay.js';
import { protocolFromAppProtocol, sniff, type Protocol } from './sniff.js';
import { SourceCap } from './source-cap.js';
import type { Upstreams } from './upstream.js';

export interface OutboundOptions {
  state: MeshState;
  lookup: ConnectionLookup;
  pipeline: Pipeline;
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
  maxConnectionsPerSource: number;
}

/** L4 feedback for a connection that was established (TCP has no status: 200 stands for "connected"). */
const L4_CONNECTED = Object.freeze({ status: 200, sent: true });

export function plainIp(ip: string | undefined): string {
  return ip?.startsWith('::ffff:') ? ip.slice(7) : ip ?? '';
}

export class Outbound {
  readonly server: net.Server;
  /** open captured connections per source pod (uid; the peer address when the pod is unknown) */
  private readonly perSource: SourceCap;

  constructor(private readonly o: OutboundOptions) {
    this.perSource = new SourceCap(o.maxConnectionsPerSource);
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
    const state = this.o.state;
    const w = state.workloadByCgroup(original.cgroupId);
    // Per source pod: past its cap a pod's new connection is refused at once, and the others are unaffected.
    const sourceKey = w?.uid ?? peer.ip;
    if (!this.perSource.admit(sourceKey, socket)) {
      return this.refuse(socket, 'source_limit', { source: w ? `${w.namespace}/${w.name}` : peer.ip, open: this.perSource.held(sourceKey), limit: this.perSource.limit });
    }
    const service = state.serviceByVip(original.ip, original.port);
    const direct = service ? undefined : state.workloadByIp(original.ip);
    const dest = newConnectionContext({
      side: 'source',
      protocol: 'tcp',
      source: sourceFromWorkload(w, w ? state.identityOf(w) : undefined, peer.ip),
      original,
      service,
      destination: direct,
      destinationPort: direct ? original.port : 0,
    });
    const forced = protocolFromAppProtocol(service?.port.appProtocol);
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
    if (protocol === 'http1' || protocol === 'http2') dest.protocol = protocol;
    switch (protocol) {
      case 'http1':
        return this.o.http1.handle(socket, dest);
      case 'http2':
        return this.o.http2.handle(socket, dest);
      default:
        return this.tcp(socket, dest);
    }
  }

  private async tcp(socket: Socket, ctx: ConnectionContext): Promise<void> {
    const to = `${ctx.original.ip}:${ctx.original.port}`;
    const plan = this.o.pipeline.planConnection(ctx);
    if ('error' in plan) return this.refuse(socket, plan.error, { destination: to, service: ctx.service?.service.name ?? null, policy: plan.refusal?.policy ?? null });
    const { route, permit } = plan;
    let up;
    try {
      up = await this.o.upstreams.open(ctx, route);
    } catch (err) {
      permit.release();
      this.o.pipeline.stages.traffic.feedback(ctx, plan.backend, plan.endpoint, { status: 0, error: (err as { reason?: string }).reason ?? 'connect_failed', sent: false }, 0);
      return this.refuse(socket, (err as { reason?: string }).reason ?? 'upstream', { destination: to, endpoint: `${route.ip}:${route.port}`, error: err });
    }
    this.o.pipeline.stages.traffic.feedback(ctx, plan.backend, plan.endpoint, L4_CONNECTED, 0);
    const done = this.o.connections.track('outbound', { source: ctx.source.principal ?? 'unknown', destination: to, endpoint: `${route.ip}:${route.port}`, route: route.kind, protocol: 'tcp' }, () => socket.destroy());
    // Same node, this proxy admitted the connection for the destination: a policy change re-evaluates it.
    const unregister = route.kind === 'local' ? this.o.pipeline.live.add({ ctx, close: () => socket.resetAndDestroy() }) : undefined;
    this.o.metrics.tcpOpen(route.labels);
    if (route.destinationLabels) this.o.metrics.tcpOpen(route.destinationLabels);
    // TrafficPolicy timeouts.idle: the Service's own idle timeout for its connections, instead of the proxy's
    await relay(socket, up, route.limits?.streamIdleMs ? { ...this.o.relay, idleTimeoutMs: route.limits.streamIdleMs } : this.o.relay);
    unregister?.();
    permit.release();
    done();
    this.o.metrics.tcpClose(route.labels, socket.bytesRead, socket.bytesWritten);
    if (route.destinationLabels) this.o.metrics.tcpClose(route.destinationLabels, socket.bytesRead, socket.bytesWritten);
    this.o.pipeline.finishConnection(ctx, socket.bytesRead, socket.bytesWritten);
  }
}
