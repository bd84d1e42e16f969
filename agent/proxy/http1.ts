// HTTP/1.1 at L7 on outbound: a non-listening node:http server parses the pod's requests (keep-alive,
// chunked bodies, trailers, 100-continue, header limits → 431); each request runs through the pipeline,
// which picks its endpoint; this adapter sends it upstream over keep-alive pools keyed by source pod: a
// plain TCP pool for pods on this node, pooled CONNECT streams through the tunnel for pods on other nodes.
// Upgrade (WebSocket, h2c) and CONNECT are forwarded as the raw request head and then relayed as bytes.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../common/log.js';
import type { AgentMetrics } from '../metrics/agent-health.js';
import type { IstioMetrics } from '../metrics/istio.js';
import { RequestContext, type ConnectionContext } from '../pipeline/context.js';
import type { Pipeline, UpstreamExchange } from '../pipeline/pipeline.js';
import type { AttemptResult, ForwardAction, HeaderEdits, LocalResponse, WeightedBackend } from '../pipeline/stages.js';
import type { ConnectionTracker } from './connections.js';
import type { DestinationResolver, Route } from './destination.js';
import { endToEndRaw, rawPairs } from './headers.js';
import { relay, resetEnd, type RelayOptions } from './relay.js';
import type { Upstreams } from './upstream.js';
import { chosenMirrors, shadowHost } from '../routing/mirror.js';
import { ReplayBody } from '../routing/replay-body.js';
import type { RoutedForward } from '../routing/router.js';

export interface Http1Options {
  pipeline: Pipeline;
  upstreams: Upstreams;
  resolver: DestinationResolver;
  metrics: IstioMetrics;
  agentMetrics: AgentMetrics;
  connections: ConnectionTracker;
  log: Logger;
  relay: RelayOptions;
  /** request and response header section limit in bytes; a larger request gets 431 */
  maxHeaderSize: number;
  keepAliveTimeoutMs: number;
  maxSocketsPerEndpoint: number;
}

const NOOP = () => {};

/** An http.Agent whose connections are CONNECT streams through one tunnel (source pod, destination identity). */
class TunnelAgent extends http.Agent {
  constructor(
    private readonly open: () => Promise<Duplex>,
    opts: http.AgentOptions,
  ) {
    super(opts);
  }

  override createConnection(_options: unknown, cb: (err: Error | null, s?: Duplex) => void): undefined {
    this.open().then((stream) => {
      // http.Agent treats its connections as net.Sockets; a tunnel stream has no keep-alive or ref to set.
      const s = stream as unknown as Record<string, unknown>;
      for (const m of ['setKeepAlive', 'setNoDelay', 'ref', 'unref']) s[m] ??= NOOP;
      cb(null, stream);
    }, (err: Error) => cb(err));
    return undefined;
  }
}

export class Http1Proxy {
  readonly server: http.Server;
  private readonly conns = new WeakMap<Socket, ConnectionContext>();
  /** keep-alive pools, one per (source pod, upstream): never shared across source workloads */
  private readonly agents = new Map<string, http.Agent>();
  private draining = false;
  /** open client connections → responses in flight on each (node's own idle tracking needs a listening server) */
  private readonly inFlight = new Map<Socket, Set<ServerResponse>>();

  constructor(private readonly o: Http1Options) {
    this.server = http.createServer({ maxHeaderSize: o.maxHeaderSize, requestTimeout: 0, keepAliveTimeout: o.keepAliveTimeoutMs, noDelay: true });
    this.server.on('request', (req, res) => void this.onRequest(req, res));
    // With a listener, node does not answer 100 itself: we forward Expect and relay the upstream's answer.
    this.server.on('checkContinue', (req, res) => void this.onRequest(req, res));
    this.server.on('upgrade', (req, socket, head) => void this.onRawTunnel(req, socket as Socket, head));
    this.server.on('connect', (req, socket, head) => void this.onRawTunnel(req, socket as Socket, head));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket as Socket));
  }

  /** Takes over a sniffed connection (its first bytes already unshifted back). */
  handle(socket: Socket, ctx: ConnectionContext): void {
    this.conns.set(socket, ctx);
    const done = this.o.connections.track('outbound', { source: ctx.source.principal ?? 'unknown', destination: `${ctx.original.ip}:${ctx.original.port}`, protocol: 'http1' }, () => socket.destroy());
    socket.once('close', done);
    this.inFlight.set(socket, new Set());
    socket.once('close', () => this.inFlight.delete(socket));
    this.server.emit('connection', socket);
    socket.resume();
  }

  agentFor(ctx: ConnectionContext, route: Route): http.Agent {
    const key =
      route.kind === 'tunnel'
        ? // per endpoint: the agent's tunnel streams CONNECT to the route it was made for, so two replicas of one
          // Service with the same identity on the same node must not share it (all requests went to the first)
          `${ctx.source.poolKey}|t|${route.destinationId}|${route.node!.name}|${route.ip}:${route.port}|${ctx.service ? `${ctx.service.service.namespace}/${ctx.service.service.name}` : ''}`
        : `${ctx.source.poolKey}|d`;
    let a = this.agents.get(key);
    if (!a) {
      const opts: http.AgentOptions = { keepAlive: true, maxSockets: this.o.maxSocketsPerEndpoint, maxFreeSockets: 64, scheduling: 'lifo', timeout: this.o.keepAliveTimeoutMs };
      if (route.kind === 'tunnel') {
        const r = route;
        a = new TunnelAgent(() => this.o.upstreams.tunnelStream(ctx, r, 'http1'), opts);
      } else {
        a = new http.Agent(opts);
      }
      this.agents.set(key, a);
    }
    return a;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const conn = this.conns.get(req.socket)!;
    res.sendDate = false;
    if (this.draining) res.shouldKeepAlive = false;
    const busy = this.inFlight.get(req.socket);
    busy?.add(res);
    const ctx = new RequestContext(conn, 'http1', req.method ?? 'GET', req.url ?? '/', req.headers.host ?? '', 'http', req.rawHeaders);
    const ex = new NodeHttpExchange(this, this.o, ctx, req, res);
    res.once('close', () => {
      busy?.delete(res);
      ex.closed();
      // Draining: a connection whose last response is done is closed now rather than kept alive.
      if (this.draining && busy?.size === 0 && !req.socket.destroyed) req.socket.end();
    });
    return this.o.pipeline.forward(ctx, ex);
  }

  /** Upgrade and CONNECT: send the request head as received, then relay bytes both ways. */
  private async onRawTunnel(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const conn = this.conns.get(socket)!;
    const plan = this.o.pipeline.planConnection(conn);
    const refuse = (status: number) => socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    if ('error' in plan) return void (plan.error === 'denied' ? refuse(403) : plan.error === 'no_endpoint' ? resetEnd(socket) : refuse(503));
    const { route, permit } = plan;
    if (route.kind === 'local') {
      // The upgrade request itself is an HTTP request: the destination half decides it like any other.
      const rctx = new RequestContext(conn, 'http1', req.method ?? 'GET', req.url ?? '/', req.headers.host ?? '', 'http', req.rawHeaders);
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
      up = await this.o.upstreams.open(conn, route, 'tcp');
    } catch (err) {
      permit.release();
      this.o.log.warn('upgrade refused upstream', { destination: `${conn.original.ip}:${conn.original.port}`, error: err });
      return void refuse((err as { reason?: string }).reason === 'denied' ? 403 : 503);
    }
    let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) text += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
    up.write(Buffer.from(text + '\r\n', 'latin1'));
    if (head.length > 0) up.write(head);
    this.o.metrics.tcpOpen(route.labels, 'http');
    const bytesBefore = { r: socket.bytesRead, w: socket.bytesWritten };
    const unregister = route.kind === 'local' ? this.o.pipeline.live.add({ ctx: conn, close: () => resetEnd(socket) }) : undefined;
    await relay(socket, up, this.o.relay);
    unregister?.();
    permit.release();
    this.o.metrics.tcpClose(route.labels, socket.bytesRead - bytesBefore.r, socket.bytesWritten - bytesBefore.w, 'http');
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    const conn = this.conns.get(socket);
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    if (tooLarge) this.o.agentMetrics.refused.inc({ direction: 'outbound', reason: 'header_too_large' });
    if (socket.writable) {
      socket.end(tooLarge ? 'HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      if (conn) this.o.metrics.request(this.o.resolver.labels('source', conn.source.workload, conn.destination, conn.service, 'none'), 'http', tooLarge ? 431 : 400, 0);
    } else {
      socket.destroy();
    }
  }

  /** Graceful drain: no new keep-alive, idle connections closed now, busy ones after their response. */
  drain(): void {
    this.draining = true;
    for (const [socket, busy] of this.inFlight) {
      if (busy.size === 0) socket.end();
      // Responses not started yet say Connection: close; node then closes after them.
      else for (const res of busy) if (!res.headersSent) res.shouldKeepAlive = false;
    }
  }

  close(): void {
    this.server.closeAllConnections();
    for (const a of this.agents.values()) a.destroy();
  }
}

/** Applies a route's header edits to a raw header list (names matched case-insensitively). */
export function editRaw(raw: string[], e: HeaderEdits | undefined): string[] {
  if (!e) return raw;
  let out = raw;
  const drop = new Set<string>();
  for (const n of e.remove ?? []) drop.add(n.toLowerCase());
  for (const [n] of e.set ?? []) drop.add(n.toLowerCase());
  if (drop.size > 0) {
    out = [];
    for (let i = 0; i < raw.length; i += 2) if (!drop.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  } else out = raw.slice();
  for (const [n, v] of e.set ?? []) out.push(n, v);
  for (const [n, v] of e.add ?? []) out.push(n, v);
  return out;
}

/** One request's exchange over node:http: one attempt at a time, its response held until the pipeline commits. */
class NodeHttpExchange implements UpstreamExchange {
  /** no body at all: replayable as is */
  private readonly bodyless: boolean;
  /** the body kept for retries and mirrors (agent/routing/replay-body.ts), when it has one */
  private readonly body: ReplayBody | undefined;
  private upReq: http.ClientRequest | undefined;
  private upRes: IncomingMessage | undefined;
  private settle: ((r: AttemptResult) => void) | undefined;
  private action: ForwardAction | undefined;
  private wb: WeightedBackend | undefined;
  private bodySent = false;
  private done = false;

  constructor(
    private readonly proxy: Http1Proxy,
    private readonly o: Http1Options,
    private readonly ctx: RequestContext,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    const cl = req.headers['content-length'];
    // No body can follow (RFC 9112 §6.3: a request without either field has none): replayable as is.
    this.bodyless = req.headers['transfer-encoding'] === undefined && (cl === undefined || cl === '0');
    this.body = this.bodyless ? undefined : new ReplayBody(cl === undefined ? undefined : Number(cl));
  }

  /** Bodyless, or the whole body (at most 64 KiB) has been kept: the request can be sent again. */
  get replayable(): boolean {
    return this.bodyless || (this.body?.replayable ?? false);
  }

  /** RequestMirror copies (fire-and-forget, response dropped); bodies only when kept (<= 64 KiB). */
  private mirror(action: RoutedForward): void {
    const targets = chosenMirrors(action.mirrors);
    if (targets.length === 0) return;
    const go = () => {
      const body = this.bodyless ? undefined : this.body!.replayable ? this.body!.bytes() : null;
      const st = this.o.pipeline.stages;
      for (const m of targets) {
        const ep = m.backend && body !== null ? st.traffic.pick(this.ctx, m.backend, []) : undefined;
        if (!m.backend || !ep) {
          m.count(body === null ? 'skipped' : 'failed');
          continue;
        }
        const route = this.o.pipeline.routeTo(this.ctx.connection, ep, m.backend);
        const headers = editRaw(endToEndRaw(this.req.rawHeaders), { set: [['Host', shadowHost(this.ctx.authority)]] });
        if (body === undefined && this.req.headers['transfer-encoding']) headers.push('Content-Length', '0');
        const up = http.request({ host: route.ip, port: route.port, method: this.req.method, path: action.rewrite?.path ?? this.req.url, headers: headers as unknown as http.OutgoingHttpHeaders, agent: this.proxy.agentFor(this.ctx.connection, route), setHost: false });
        up.on('response', (r) => {
          m.count('sent');
          r.resume();
        });
        up.on('error', () => m.count('failed'));
        up.end(body);
      }
    };
    if (this.bodyless || this.body!.replayable) go();
    else if (!this.body!.fits) for (const m of targets) m.count('skipped');
    else this.req.once('end', () => setImmediate(go));
  }

  send(route: Route, action: ForwardAction, wb: WeightedBackend): Promise<AttemptResult> {
    this.wb = wb;
    if (!this.action && (action as RoutedForward).mirrors) this.mirror(action as RoutedForward);
    this.wb = wb;
    this.action = action;
    const req = this.req;
    let headers = endToEndRaw(req.rawHeaders);
    headers = editRaw(editRaw(headers, action.requestHeaders), wb.requestHeaders);
    if (action.rewrite?.authority) headers = editRaw(headers, { set: [['Host', action.rewrite.authority]] });
    // Transfer-Encoding is per hop; re-declare chunked framing so a body of unknown length (even on GET)
    // is framed the same way upstream.
    if (req.headers['transfer-encoding'] && req.headers['content-length'] === undefined) headers.push('Transfer-Encoding', 'chunked');
    return new Promise<AttemptResult>((resolve) => {
      let sent = false;
      this.settle = (r) => {
        this.settle = undefined;
        resolve(r);
      };
      const up = http.request({
        host: route.ip,
        port: route.port,
        method: req.method,
        path: action.rewrite?.path ?? req.url,
        headers: headers as unknown as http.OutgoingHttpHeaders,
        agent: this.proxy.agentFor(this.ctx.connection, route),
        maxHeaderSize: this.o.maxHeaderSize,
        setHost: false,
      });
      this.upReq = up;
      up.once('socket', () => (sent = true));
      up.on('information', (info) => {
        const res = this.res;
        if (info.statusCode === 100) res.writeContinue();
        else if (info.statusCode === 102) res.writeProcessing();
        else if (info.statusCode === 103) res.writeEarlyHints(Object.fromEntries(rawPairs(endToEndRaw(info.rawHeaders))));
      });
      up.on('response', (ur: IncomingMessage) => {
        this.upRes = ur;
        ur.pause();
        this.settle?.({ status: ur.statusCode ?? 502, sent: true });
      });
      up.on('error', (err) => {
        if (this.upRes) return resetEnd(this.res.socket as Socket);
        const reason = (err as { reason?: string; code?: string }).reason ?? ((err as { code?: string }).code === 'ECONNREFUSED' ? 'connect_failed' : 'reset');
        this.settle?.({ status: 0, error: reason, sent });
      });
      if (this.bodyless) {
        up.end();
      } else if (!this.bodySent) {
        this.bodySent = true;
        const body = this.body!;
        req.on('data', (chunk: Buffer) => body.add(chunk));
        req.pipe(up, { end: false });
        req.on('end', () => {
          // Trailers cannot be replayed from the kept bytes: a body with trailers goes once.
          if (req.rawTrailers.length > 0) up.addTrailers(rawPairs(req.rawTrailers));
          else body.end();
          up.end();
        });
      } else if (this.body?.replayable) {
        up.end(this.body.bytes());
      } else {
        up.destroy();
        this.settle?.({ status: 0, error: 'reset', sent: false });
      }
    });
  }

  commit(): Promise<void> {
    const ur = this.upRes!;
    const res = this.res;
    return new Promise<void>((resolve) => {
      if (res.destroyed) {
        ur.destroy();
        return resolve();
      }
      let raw = endToEndRaw(ur.rawHeaders);
      if (this.action?.responseHeaders) raw = editRaw(raw, this.action.responseHeaders);
      if (this.wb?.responseHeaders) raw = editRaw(raw, this.wb.responseHeaders);
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, raw as unknown as http.OutgoingHttpHeaders);
      // Forward the body by hand rather than pipe(): same backpressure, a fraction of pipe's listeners.
      ur.on('data', (chunk: Buffer) => {
        this.ctx.outcome.bytesSent += chunk.length;
        if (!res.write(chunk)) {
          ur.pause();
          res.once('drain', () => ur.resume());
        }
      });
      ur.on('end', () => {
        if (ur.rawTrailers.length > 0) res.addTrailers(rawPairs(ur.rawTrailers));
        res.end();
      });
      ur.on('error', () => resetEnd(res.socket as Socket));
      res.once('close', () => resolve());
      ur.resume();
    });
  }

  discard(): void {
    this.upRes?.destroy();
    this.upRes = undefined;
  }

  abort(): void {
    if (this.settle) {
      this.upReq?.destroy();
      this.settle({ status: 0, error: 'timeout', sent: true });
    } else if (this.upRes) {
      this.upRes.destroy();
      resetEnd(this.res.socket as Socket);
    } else {
      resetEnd(this.res.socket as Socket);
    }
  }

  reply(r: LocalResponse): void {
    const res = this.res;
    if (res.headersSent || res.destroyed) return void resetEnd(res.socket as Socket);
    const body = r.body ?? '';
    const headers: string[] = [];
    for (const [n, v] of r.headers ?? []) headers.push(n, v);
    headers.push('content-length', String(Buffer.byteLength(body)));
    if (body && !(r.headers ?? []).some(([n]) => n.toLowerCase() === 'content-type')) headers.push('content-type', 'text/plain');
    res.writeHead(r.status, headers as unknown as http.OutgoingHttpHeaders);
    res.end(body);
  }

  /** The client's response closed (finished, or the client went away). */
  closed(): void {
    if (this.done) return;
    this.done = true;
    if (!this.res.writableFinished) {
      this.ctx.outcome.flags.push('DC');
      this.upRes?.destroy();
      if (this.upReq && !this.upReq.destroyed) this.upReq.destroy();
      this.settle?.({ status: 0, error: 'reset', sent: true });
    }
  }
}
