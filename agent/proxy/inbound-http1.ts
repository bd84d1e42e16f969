// The destination half per request, cross node, for HTTP/1: a tunnel CONNECT stream announced as
// `x-weft-protocol: http1` is parsed on this side too, with the same codec as the source (h1/), and each
// request is authorized and admitted here (AuthorizationPolicy with L7 fields, the local rate limit) before
// it reaches the pod. The pod connection belongs to that one stream (the source pools streams per source
// pod, so a pod connection never carries two callers), opened before the CONNECT is answered so a pod that
// refuses still fails the stream (connect-failure at the source); if the pod closes it between requests, the
// next request opens another. Upgrade requests are decided like any other request, then relayed as bytes.
import type { Duplex } from 'node:stream';
import type { Logger } from '../../common/log.js';
import type { AgentMetrics } from '../metrics/agent-health.js';
import { RequestContext, type ConnectionContext } from '../pipeline/context.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { Route } from './destination.js';
import { CodecExchange, type UpstreamSource } from './h1/exchange.js';
import { headerValue } from './h1/head.js';
import { H1ServerConn, type H1Request, type H1ServerHandler, type H1ServerOptions, type RequestSink } from './h1/server.js';
import { H1Upstream } from './h1/upstream.js';
import { relay, resetEnd, type RelayOptions } from './relay.js';
import { STATUS_LINE } from './http1.js';

/** The pod a tunnel stream is for, and how to reach it (from the caller's address when transparent). */
export interface Delivery {
  ctx: ConnectionContext;
  /** kind 'local', labelled reporter="destination" */
  route: Route;
  connect(): Promise<Duplex>;
}

export interface InboundHttp1Options {
  pipeline: Pipeline;
  agentMetrics: AgentMetrics;
  log: Logger;
  relay: RelayOptions;
  server: H1ServerOptions;
}

interface StreamState {
  delivery: Delivery;
  /** the pod connection of this stream, while open */
  up: H1Upstream | undefined;
  conn: H1ServerConn;
}

export class InboundHttp1 implements H1ServerHandler, UpstreamSource {
  readonly pipeline: Pipeline;
  /** one attempt at the pod: the source keeps bodies for its retries, this side need not copy them */
  readonly keepsBodies = false;
  private readonly streams = new Map<H1ServerConn, StreamState>();
  private readonly byCtx = new WeakMap<ConnectionContext, StreamState>();

  constructor(private readonly o: InboundHttp1Options) {
    this.pipeline = o.pipeline;
  }

  /** Serves a tunnel stream whose pod connection `pod` is already open; resolves when the stream is over. */
  serve(stream: Duplex, delivery: Delivery, pod: Duplex): Promise<void> {
    const conn = new H1ServerConn(stream, this, this.o.server);
    const s: StreamState = { delivery, up: undefined, conn };
    s.up = this.upstream(s, pod);
    this.streams.set(conn, s);
    this.byCtx.set(delivery.ctx, s);
    return new Promise<void>((resolve) => {
      stream.once('close', () => {
        this.streams.delete(conn);
        s.up?.destroy();
        s.up = undefined;
        resolve();
      });
      stream.resume();
    });
  }

  private upstream(s: StreamState, socket: Duplex): H1Upstream {
    return new H1Upstream(socket, '', (u) => {
      if (u.dead && s.up === u) s.up = undefined;
    });
  }

  request(conn: H1ServerConn, req: H1Request): RequestSink {
    const s = this.streams.get(conn)!;
    const ctx = new RequestContext(s.delivery.ctx, 'http1', req.method, req.target, headerValue(req.raw, 'host') ?? '', 'http', req.raw);
    const ex = new CodecExchange(conn, ctx, req, this);
    void this.o.pipeline.deliver(ctx, ex, s.delivery.route);
    return ex;
  }

  /** The stream's pod connection; a new one when it closed (or the exchange asks for a fresh one). */
  async acquire(ctx: RequestContext, _route: Route, fresh: boolean): Promise<{ up: H1Upstream; reused: boolean }> {
    const s = this.byCtx.get(ctx.connection)!;
    const cur = s.up;
    if (cur && !cur.dead && !fresh) return { up: cur, reused: cur.uses > 0 };
    cur?.destroy();
    const up = this.upstream(s, await s.delivery.connect());
    s.up = up;
    return { up, reused: false };
  }

  /** Upgrade (WebSocket, h2c) and CONNECT inside the stream: the request is decided here, then bytes flow. */
  upgrade(conn: H1ServerConn, req: H1Request, rest: Buffer): void {
    void this.relayUpgrade(conn, req, rest);
  }

  private async relayUpgrade(conn: H1ServerConn, req: H1Request, rest: Buffer): Promise<void> {
    const s = this.streams.get(conn)!;
    const stream = conn.socket;
    const ctx = new RequestContext(s.delivery.ctx, 'http1', req.method, req.target, headerValue(req.raw, 'host') ?? '', 'http', req.raw);
    ctx.labels = s.delivery.route.labels;
    const refusal = this.o.pipeline.destinationRequest(ctx);
    if (refusal) {
      ctx.outcome.status = refusal.status;
      if (refusal.flag) ctx.outcome.flags.push(refusal.flag);
      this.o.pipeline.finish(ctx);
      return void stream.end(`HTTP/1.1 ${STATUS_LINE[refusal.status] ?? `${refusal.status} Error`}\r\nContent-Length: ${Buffer.byteLength(refusal.body ?? '')}\r\nConnection: close\r\n\r\n${refusal.body ?? ''}`);
    }
    // The pod connection opened for this stream is idle (an upgrade is the stream's last request): use it.
    let pod: Duplex;
    const up = s.up;
    s.up = undefined;
    try {
      pod = up && !up.dead ? up.detach() : await s.delivery.connect();
    } catch (err) {
      this.o.log.warn('upgrade refused at the pod', { endpoint: `${s.delivery.route.ip}:${s.delivery.route.port}`, error: err });
      return void stream.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    }
    pod.write(rest.length > 0 ? Buffer.concat([req.head, rest]) : req.head);
    const unregister = this.o.pipeline.live.add({ ctx, close: () => resetEnd(stream) });
    stream.resume();
    await relay(stream, pod, this.o.relay);
    unregister();
  }

  refused(conn: H1ServerConn, status: number, reason: string): void {
    this.o.agentMetrics.refused.inc({ direction: 'inbound', reason: status === 431 ? 'header_too_large' : status === 408 ? 'header_timeout' : 'bad_request' });
    const s = this.streams.get(conn);
    if (status === 400) this.o.log.info('http request refused', { status, reason, source: s?.delivery.ctx.source.principal ?? null });
  }

  /** Graceful drain: no new keep-alive on any stream, idle ones closed now. */
  drain(): void {
    for (const c of this.streams.keys()) c.drain();
  }
}
