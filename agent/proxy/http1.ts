// HTTP/1.1 at L7 on outbound, on our own codec (agent/proxy/h1/): llhttp finds heads and message ends on
// the pod's connection; each request runs through the pipeline, which picks its endpoint; the head goes
// upstream as its original bytes (unless a hop-by-hop field must go), the body in its original framing, over
// LIFO pools of upstream connections keyed by source pod: TCP to pods on this node (or outside the mesh),
// CONNECT streams through the tunnel (x-weft-protocol: http1) to pods on other nodes. Upgrade (WebSocket,
// h2c) and CONNECT are forwarded as the original head and then relayed as bytes.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../common/log.js';
import type { AgentMetrics } from '../metrics/agent-health.js';
import type { IstioMetrics } from '../metrics/istio.js';
import { RequestContext, type ConnectionContext } from '../pipeline/context.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { ConnectionTracker } from './connections.js';
import type { DestinationResolver, Route } from './destination.js';
import { CodecExchange, type UpstreamSource } from './h1/exchange.js';
import { headerValue } from './h1/head.js';
import { H1ServerConn, type H1Request, type H1ServerHandler, type RequestSink } from './h1/server.js';
import { H1Pool, H1Upstream } from './h1/upstream.js';
import { relay, resetEnd, type RelayOptions } from './relay.js';
import type { Upstreams } from './upstream.js';

export interface Http1Options {
  pipeline: Pipeline;
  upstreams: Upstreams;
  resolver: DestinationResolver;
  metrics: IstioMetrics;
  agentMetrics: AgentMetrics;
  connections: ConnectionTracker;
  log: Logger;
  relay: RelayOptions;
  /** request header section limit in bytes; a larger request gets 431 */
  maxHeaderSize: number;
  keepAliveTimeoutMs: number;
  /** a request head must be complete this long after its first byte (408 otherwise) */
  headersTimeoutMs?: number;
  connectTimeoutMs?: number;
  maxSocketsPerEndpoint: number;
}

export const STATUS_LINE: Record<number, string> = { 403: '403 Forbidden', 429: '429 Too Many Requests', 503: '503 Service Unavailable' };

/** The Service's connection settings in force now (TrafficPolicy connectionPool), also on a pooled connection. */
function withLimits(up: H1Upstream, route: Route): H1Upstream {
  up.maxUses = route.limits?.maxRequestsPerConnection ?? 0;
  up.idleTimeoutMs = route.limits?.idleTimeoutMs;
  return up;
}

export class Http1Proxy implements H1ServerHandler, UpstreamSource {
  readonly pipeline: Pipeline;
  readonly keepsBodies = true;
  private readonly conns = new Map<H1ServerConn, ConnectionContext>();
  private readonly pool: H1Pool;

  constructor(private readonly o: Http1Options) {
    this.pipeline = o.pipeline;
    this.pool = new H1Pool(o.keepAliveTimeoutMs);
  }

  private get serverOptions() {
    return { maxHeaderSize: this.o.maxHeaderSize, headersTimeoutMs: this.o.headersTimeoutMs ?? 60_000, keepAliveTimeoutMs: this.o.keepAliveTimeoutMs, idleTimeoutMs: this.o.relay.idleTimeoutMs };
  }

  /** Takes over a sniffed connection (its first bytes already unshifted back). */
  handle(socket: Socket, ctx: ConnectionContext): void {
    const conn = new H1ServerConn(socket, this, this.serverOptions);
    this.conns.set(conn, ctx);
    const done = this.o.connections.track('outbound', { source: ctx.source.principal ?? 'unknown', destination: `${ctx.original.ip}:${ctx.original.port}`, protocol: 'http1' }, () => socket.destroy());
    socket.once('close', () => {
      this.conns.delete(conn);
      done();
    });
    socket.resume();
  }

  request(conn: H1ServerConn, req: H1Request): RequestSink {
    const cctx = this.conns.get(conn)!;
    const ctx = new RequestContext(cctx, 'http1', req.method, req.target, headerValue(req.raw, 'host') ?? '', 'http', req.raw);
    const ex = new CodecExchange(conn, ctx, req, this);
    void this.o.pipeline.forward(ctx, ex);
    return ex;
  }

  async acquire(ctx: RequestContext, route: Route, fresh: boolean): Promise<{ up: H1Upstream; reused: boolean }> {
    const conn = ctx.connection;
    const key =
      route.kind === 'tunnel'
        ? `${conn.source.poolKey}|t|${route.destinationId}|${route.node!.name}|${route.ip}:${route.port}|${conn.service ? `${conn.service.service.namespace}/${conn.service.service.name}` : ''}`
        : `${conn.source.poolKey}|d|${route.ip}:${route.port}`;
    if (!fresh) {
      const up = this.pool.take(key);
      if (up) return { up: withLimits(up, route), reused: true };
    }
    // Same node: from the caller's own address when transparent sockets are available (upstream.ts).
    const socket: Duplex = await this.o.upstreams.open(conn, route, 'http1');
    return { up: withLimits(new H1Upstream(socket, key, this.pool.put), route), reused: false };
  }

  /** Upgrade and CONNECT: send the request head as received, then relay bytes both ways. */
  upgrade(conn: H1ServerConn, req: H1Request, rest: Buffer): void {
    void this.relayUpgrade(conn, req, rest);
  }

  private async relayUpgrade(conn: H1ServerConn, req: H1Request, rest: Buffer): Promise<void> {
    const cctx = this.conns.get(conn)!;
    const socket = conn.socket as Socket;
    const refuse = (status: number) => socket.end(`HTTP/1.1 ${STATUS_LINE[status] ?? `${status} Error`}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    const plan = this.o.pipeline.planConnection(cctx);
    if ('error' in plan) return void (plan.error === 'denied' ? refuse(403) : plan.error === 'no_endpoint' ? resetEnd(socket) : refuse(503));
    const { route, permit } = plan;
    if (route.kind === 'local') {
      // The upgrade request itself is an HTTP request: the destination half decides it like any other.
      const rctx = new RequestContext(cctx, 'http1', req.method, req.target, headerValue(req.raw, 'host') ?? '', 'http', req.raw);
      rctx.destination = route.workload;
      rctx.destinationPort = route.port;
      const refusal = this.o.pipeline.destinationRequest(rctx);
      if (refusal) {
        permit.release();
        return void refuse(refusal.status);
      }
    }
    let up: Duplex;
    try {
      // Through the tunnel as HTTP/1, so the destination's proxy decides the upgrade request itself.
      up = await this.o.upstreams.open(cctx, route, route.kind === 'tunnel' ? 'http1' : 'tcp');
    } catch (err) {
      permit.release();
      this.o.log.warn('upgrade refused upstream', { destination: `${cctx.original.ip}:${cctx.original.port}`, error: err });
      return void refuse((err as { reason?: string }).reason === 'denied' ? 403 : 503);
    }
    up.write(rest.length > 0 ? Buffer.concat([req.head, rest]) : req.head);
    this.o.metrics.tcpOpen(route.labels, 'http');
    const bytesBefore = { r: socket.bytesRead, w: socket.bytesWritten };
    const unregister = route.kind === 'local' ? this.o.pipeline.live.add({ ctx: cctx, close: () => resetEnd(socket) }) : undefined;
    socket.resume();
    // An upgraded stream (WebSocket) idles out as the Service's TrafficPolicy timeouts.idle says, else as the proxy's.
    await relay(socket, up, route.limits?.streamIdleMs ? { ...this.o.relay, idleTimeoutMs: route.limits.streamIdleMs } : this.o.relay);
    unregister?.();
    permit.release();
    this.o.metrics.tcpClose(route.labels, socket.bytesRead - bytesBefore.r, socket.bytesWritten - bytesBefore.w, 'http');
  }

  refused(conn: H1ServerConn, status: number, reason: string): void {
    const cctx = this.conns.get(conn);
    const direction = cctx?.side === 'destination' ? 'inbound' : 'outbound';
    this.o.agentMetrics.refused.inc({ direction, reason: status === 431 ? 'header_too_large' : status === 408 ? 'header_timeout' : 'bad_request' });
    if (status === 400) this.o.log.info('http request refused', { status, reason });
    // Envoy flags a request its codec refused as a downstream protocol error.
    if (cctx) this.o.metrics.request(this.o.resolver.labels('source', cctx.source.workload, cctx.destination, cctx.service, 'none'), 'http', status, 0, 0, 0, 'DPE');
  }

  /** Graceful drain: no new keep-alive, idle connections closed now, busy ones after their response. */
  drain(): void {
    for (const c of this.conns.keys()) c.drain();
  }

  close(): void {
    for (const c of this.conns.keys()) c.destroy();
    this.pool.close();
  }
}
