// HTTP/1.1 at L7 on outbound: a non-listening node:http server parses the pod's requests (keep-alive,
// chunked bodies, trailers, 100-continue, header limits → 431), each request picks its own endpoint, and
// goes upstream over a keep-alive pool: a plain TCP pool for pods on this node, pooled CONNECT streams
// through the tunnel for pods on other nodes. Upgrade (WebSocket, h2c) and CONNECT are forwarded as the
// raw request head and then relayed as bytes, so whatever the server answers reaches the client untouched.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../common/log.js';
import type { AgentMetrics } from '../metrics/agent-health.js';
import type { IstioMetrics } from '../metrics/istio.js';
import type { ConnectionTracker } from './connections.js';
import type { Destination, Route } from './destination.js';
import { endToEndRaw, rawPairs } from './headers.js';
import type { TunnelPool } from './pool.js';
import { relay, resetEnd, type RelayOptions } from './relay.js';
import type { AuthorizeRequest } from './authorize.js';
import { authority, forwardedFor, type UpstreamOptions, type Upstreams } from './upstream.js';

export interface Http1Options {
  upstreams: Upstreams;
  pool: TunnelPool;
  tunnelAddress: UpstreamOptions['tunnelAddress'];
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

/** An http.Agent whose connections are CONNECT streams through one tunnel (source, destination identity). */
class TunnelAgent extends http.Agent {
  constructor(
    private readonly pool: TunnelPool,
    private readonly req: { sourceId: string; destinationId: string; node: { host: string; port: number }; baggage: string; forwarded?: string },
    opts: http.AgentOptions,
  ) {
    super(opts);
  }

  override createConnection(options: { host?: string | null; port?: number | null }, cb: (err: Error | null, s?: Duplex) => void): undefined {
    this.pool
      .connect({ ...this.req, authority: authority(options.host ?? '', options.port ?? 0), headers: { baggage: this.req.baggage, ...(this.req.forwarded ? { forwarded: this.req.forwarded } : {}) } })
      .then((stream) => {
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
  private readonly dests = new WeakMap<Socket, Destination>();
  private readonly localAgent: http.Agent;
  private readonly tunnelAgents = new Map<string, TunnelAgent>();
  private draining = false;
  /** open client connections → responses in flight on each (node's own idle tracking needs a listening server) */
  private readonly inFlight = new Map<Socket, Set<ServerResponse>>();

  constructor(private readonly o: Http1Options) {
    this.server = http.createServer({ maxHeaderSize: o.maxHeaderSize, requestTimeout: 0, keepAliveTimeout: o.keepAliveTimeoutMs, noDelay: true });
    this.server.on('request', (req, res) => this.onRequest(req, res));
    // With a listener, node does not answer 100 itself: we forward Expect and relay the upstream's answer.
    this.server.on('checkContinue', (req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req, socket, head) => void this.onRawTunnel(req, socket as Socket, head));
    this.server.on('connect', (req, socket, head) => void this.onRawTunnel(req, socket as Socket, head));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket as Socket));
    this.localAgent = new http.Agent({ keepAlive: true, maxSockets: o.maxSocketsPerEndpoint, maxFreeSockets: 64, scheduling: 'lifo', timeout: o.keepAliveTimeoutMs });
  }

  /** Takes over a sniffed connection (its first bytes already unshifted back). */
  handle(socket: Socket, dest: Destination): void {
    this.dests.set(socket, dest);
    const done = this.o.connections.track('outbound', { source: dest.sourceId ?? 'unknown', destination: `${dest.original.ip}:${dest.original.port}`, protocol: 'http1' }, () => socket.destroy());
    socket.once('close', done);
    this.inFlight.set(socket, new Set());
    socket.once('close', () => this.inFlight.delete(socket));
    this.server.emit('connection', socket);
    socket.resume();
  }

  private agentFor(dest: Destination, route: Route): http.Agent {
    if (route.kind !== 'tunnel') return this.localAgent;
    const key = `${dest.source?.uid}|${route.destinationId}|${route.node!.name}|${dest.service?.service.name ?? ''}`;
    let a = this.tunnelAgents.get(key);
    if (!a) {
      a = new TunnelAgent(
        this.o.pool,
        { sourceId: dest.sourceId!, destinationId: route.destinationId!, node: this.o.tunnelAddress(route.node!), baggage: this.o.upstreams.baggage(dest), ...forwardedFor(dest, route.ip) },
        { keepAlive: true, maxSockets: this.o.maxSocketsPerEndpoint, maxFreeSockets: 64, scheduling: 'lifo', timeout: this.o.keepAliveTimeoutMs },
      );
      this.tunnelAgents.set(key, a);
    }
    return a;
  }

  private fail(res: ServerResponse, dest: Destination, route: Route | undefined, status: number, reason: string, err: unknown, t0: number): void {
    this.o.log.warn('http request failed upstream', { reason, destination: `${dest.original.ip}:${dest.original.port}`, endpoint: route ? `${route.ip}:${route.port}` : null, error: err });
    if (!res.headersSent) {
      // a policy denial answers as Envoy's RBAC filter does, so clients and dashboards see the familiar 403
      const body = reason === 'denied' ? 'RBAC: access denied' : '';
      res.writeHead(status, { 'content-length': String(body.length), ...(body ? { 'content-type': 'text/plain' } : {}) });
      res.end(body);
    } else {
      resetEnd(res.socket as Socket);
    }
    if (route) this.o.metrics.request(route.labels, 'http', status, performance.now() - t0);
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    const dest = this.dests.get(req.socket)!;
    res.sendDate = false;
    if (this.draining) res.shouldKeepAlive = false;
    const busy = this.inFlight.get(req.socket);
    busy?.add(res);
    // One close listener per request does all the per-response cleanup (fewer listeners, less churn).
    let upReq: http.ClientRequest | undefined;
    let upRes: IncomingMessage | undefined;
    let route: Route | undefined;
    res.once('close', () => {
      busy?.delete(res);
      if (upRes) {
        if (!res.writableFinished) upRes.destroy();
        this.o.metrics.request(route!.labels, 'http', upRes.statusCode ?? 0, performance.now() - t0);
      }
      if (upReq && !res.writableFinished && !upReq.destroyed) upReq.destroy();
      // Draining: a connection whose last response is done is closed now rather than kept alive.
      if (this.draining && busy?.size === 0 && !req.socket.destroyed) req.socket.end();
    });
    route = dest.pick();
    if (!route) return this.fail(res, dest, undefined, 503, 'no_endpoint', undefined, t0);
    if (route.kind === 'local') {
      try {
        await this.o.upstreams.authorizeLocal(dest, route, { request: requestAttributes(req) });
      } catch (err) {
        return this.fail(res, dest, route, 403, 'denied', err, t0);
      }
    } else if (route.kind === 'tunnel' && !dest.sourceId) {
      return this.fail(res, dest, route, 503, 'unknown_source', undefined, t0);
    }

    const headers = endToEndRaw(req.rawHeaders);
    // Transfer-Encoding is per hop; re-declare chunked framing so a body of unknown length (even on GET)
    // is framed the same way upstream.
    if (req.headers['transfer-encoding'] && req.headers['content-length'] === undefined) headers.push('Transfer-Encoding', 'chunked');
    const r = route;
    const up = http.request({
      host: r.ip,
      port: r.port,
      method: req.method,
      path: req.url,
      headers: headers as unknown as http.OutgoingHttpHeaders,
      agent: this.agentFor(dest, r),
      maxHeaderSize: this.o.maxHeaderSize,
      setHost: false,
    });
    upReq = up;
    up.on('information', (info) => {
      if (info.statusCode === 100) res.writeContinue();
      else if (info.statusCode === 102) res.writeProcessing();
      else if (info.statusCode === 103) res.writeEarlyHints(Object.fromEntries(rawPairs(endToEndRaw(info.rawHeaders))));
    });
    up.on('response', (ur: IncomingMessage) => {
      upRes = ur;
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, endToEndRaw(ur.rawHeaders) as unknown as http.OutgoingHttpHeaders);
      // Forward the body by hand rather than pipe(): same backpressure, a fraction of pipe's listeners.
      ur.on('data', (chunk: Buffer) => {
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
    });
    up.on('error', (err) => {
      if (upRes) return resetEnd(res.socket as Socket);
      const reason = (err as { reason?: string }).reason ?? 'upstream_reset';
      this.fail(res, dest, r, reason === 'denied' ? 403 : 503, reason, err, t0);
    });
    const cl = req.headers['content-length'];
    if (req.headers['transfer-encoding'] === undefined && (cl === undefined || cl === '0')) {
      // No body can follow (RFC 9112 §6.3: a request without either field has none), the common GET:
      // head and end go out in one write, with no pipe. Node's server drains the unread request itself.
      up.end();
      return;
    }
    req.pipe(up, { end: false });
    req.on('end', () => {
      if (req.rawTrailers.length > 0) up.addTrailers(rawPairs(req.rawTrailers));
      up.end();
    });
  }

  /** Upgrade and CONNECT: send the request head as received, then relay bytes both ways. */
  private async onRawTunnel(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const dest = this.dests.get(socket)!;
    const route = dest.pick();
    if (!route) return void resetEnd(socket);
    let up: Duplex;
    try {
      up = await this.o.upstreams.open(dest, route);
    } catch (err) {
      this.o.log.warn('upgrade refused upstream', { destination: `${dest.original.ip}:${dest.original.port}`, error: err });
      const denied = (err as { reason?: string }).reason === 'denied';
      socket.end(`HTTP/1.1 ${denied ? '403 Forbidden' : '503 Service Unavailable'}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      return;
    }
    let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) text += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
    up.write(text + '\r\n');
    if (head.length > 0) up.write(head);
    this.o.metrics.tcpOpen(route.labels, 'http');
    const bytesBefore = { r: socket.bytesRead, w: socket.bytesWritten };
    await relay(socket, up, this.o.relay);
    this.o.metrics.tcpClose(route.labels, socket.bytesRead - bytesBefore.r, socket.bytesWritten - bytesBefore.w, 'http');
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    const dest = this.dests.get(socket);
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    if (tooLarge) this.o.agentMetrics.refused.inc({ direction: 'outbound', reason: 'header_too_large' });
    if (socket.writable) {
      socket.end(tooLarge ? 'HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      if (dest) {
        const route = dest.pick();
        if (route) this.o.metrics.request(route.labels, 'http', tooLarge ? 431 : 400, 0);
      }
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
    this.localAgent.destroy();
    for (const a of this.tunnelAgents.values()) a.destroy();
  }
}

/** The request as policy sees it (method, path without query, host, headers). */
export function requestAttributes(req: IncomingMessage): AuthorizeRequest {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return {
    method: req.method ?? 'GET',
    path: q < 0 ? url : url.slice(0, q),
    host: req.headers.host ?? '',
    header: (name) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v.join(',') : v;
    },
  };
}
