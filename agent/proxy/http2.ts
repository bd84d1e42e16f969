// HTTP/2 (prior knowledge, which includes gRPC) at L7 on outbound: a non-listening node:http2 server
// terminates the pod's connection, each stream picks its own endpoint and is forwarded as a stream on a
// pooled upstream HTTP/2 connection (direct for pods on this node, inside a CONNECT stream through the
// tunnel for pods on other nodes). Flow control is HTTP/2's own on both sides, joined by pipe(); trailers
// (gRPC status) and resets (cancellation) are forwarded.
import http2, { type ClientHttp2Session, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Logger } from '../../common/log.js';
import type { AgentMetrics } from '../metrics/agent-health.js';
import type { IstioMetrics } from '../metrics/istio.js';
import type { ConnectionTracker } from './connections.js';
import type { Destination, Route } from './destination.js';
import { h2Headers } from './headers.js';
import type { TunnelPool } from './pool.js';
import { authority, forwardedFor, type UpstreamOptions, type Upstreams } from './upstream.js';

export interface Http2Options {
  upstreams: Upstreams;
  pool: TunnelPool;
  tunnelAddress: UpstreamOptions['tunnelAddress'];
  metrics: IstioMetrics;
  agentMetrics: AgentMetrics;
  connections: ConnectionTracker;
  log: Logger;
  maxHeaderSize: number;
  streamWindow: number;
  connectionWindow: number;
  maxConcurrentStreams: number;
  idleTimeoutMs: number;
}

const { NGHTTP2_FLAG_END_STREAM, NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = http2.constants;

export class Http2Proxy {
  readonly server: http2.Http2Server;
  private readonly dests = new WeakMap<Http2Session, Destination>();
  private pending: Destination | undefined;
  private readonly upstream = new Map<string, Promise<ClientHttp2Session>>();
  private readonly sessions = new Set<Http2Session>();

  constructor(private readonly o: Http2Options) {
    this.server = http2.createServer({
      maxHeaderListPairs: 256,
      maxSendHeaderBlockLength: o.maxHeaderSize,
      settings: { enablePush: false, maxConcurrentStreams: o.maxConcurrentStreams, initialWindowSize: o.streamWindow, maxHeaderListSize: o.maxHeaderSize },
    });
    this.server.on('session', (session) => {
      // 'connection' → 'session' is synchronous, so the destination set by handle() is this session's.
      if (this.pending) this.dests.set(session, this.pending);
      this.pending = undefined;
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      session.on('error', () => {});
      session.setLocalWindowSize(o.connectionWindow);
    });
    this.server.on('stream', (stream, headers, flags) => void this.onStream(stream, headers, flags));
    this.server.setTimeout(o.idleTimeoutMs);
  }

  handle(socket: Socket, dest: Destination): void {
    const done = this.o.connections.track('outbound', { source: dest.sourceId ?? 'unknown', destination: `${dest.original.ip}:${dest.original.port}`, protocol: 'http2' }, () => socket.destroy());
    socket.once('close', done);
    this.pending = dest;
    this.server.emit('connection', socket);
    this.pending = undefined;
  }

  private upstreamSession(dest: Destination, route: Route): Promise<ClientHttp2Session> {
    const key = route.kind === 'tunnel' ? `${dest.source?.uid}|${route.destinationId}|${route.ip}:${route.port}|${dest.service?.service.name ?? ''}` : `${route.ip}:${route.port}`;
    let p = this.upstream.get(key);
    if (!p) {
      p = this.connectUpstream(dest, route);
      this.upstream.set(key, p);
      const forget = () => this.upstream.get(key) === p && this.upstream.delete(key);
      p.then((s) => {
        s.once('close', forget);
        s.once('goaway', forget);
        s.on('error', () => {});
      }, forget);
    }
    return p;
  }

  private async connectUpstream(dest: Destination, route: Route): Promise<ClientHttp2Session> {
    const settings = { enablePush: false, initialWindowSize: this.o.streamWindow };
    let session: ClientHttp2Session;
    if (route.kind === 'tunnel') {
      if (!dest.sourceId) throw new Error('no source identity');
      const stream = await this.o.pool.connect({
        sourceId: dest.sourceId,
        destinationId: route.destinationId!,
        node: this.o.tunnelAddress(route.node!),
        authority: authority(route.ip, route.port),
        headers: { baggage: this.o.upstreams.baggage(dest), ...forwardedFor(dest, route.ip) },
      });
      session = http2.connect(`http://${authority(route.ip, route.port)}`, { settings, createConnection: () => stream });
    } else {
      if (route.kind === 'local') await this.o.upstreams.authorizeLocal(dest, route);
      session = http2.connect(`http://${authority(route.ip, route.port)}`, { settings });
    }
    await new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.on('error', reject);
    });
    session.setLocalWindowSize(this.o.connectionWindow);
    session.setTimeout(this.o.idleTimeoutMs, () => session.close());
    return session;
  }

  private async onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number): Promise<void> {
    const t0 = performance.now();
    stream.on('error', () => {});
    const dest = this.dests.get(stream.session!);
    const route = dest?.pick();
    if (!dest || !route) return this.answer(stream, 503, undefined, t0);
    let session: ClientHttp2Session;
    try {
      session = await this.upstreamSession(dest, route);
    } catch (err) {
      this.o.log.warn('http2 upstream unavailable', { destination: `${dest.original.ip}:${dest.original.port}`, endpoint: `${route.ip}:${route.port}`, error: err });
      return this.answer(stream, (err as { reason?: string }).reason === 'denied' ? 403 : 503, route, t0);
    }
    if (stream.destroyed) return;
    const endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    const protocol = String(headers['content-type'] ?? '').startsWith('application/grpc') ? 'grpc' : 'http';
    let up: http2.ClientHttp2Stream;
    try {
      up = session.request(h2Headers(headers) as http2.OutgoingHttpHeaders, { endStream });
    } catch (err) {
      this.o.log.warn('http2 upstream request failed', { error: err });
      return this.answer(stream, 503, route, t0);
    }
    up.on('error', () => {});
    let status = 0;
    let trailers: IncomingHttpHeaders | undefined;
    up.on('headers', (info) => {
      // 1xx informational responses.
      if (!stream.destroyed && !stream.headersSent) stream.additionalHeaders(h2Headers(info) as http2.OutgoingHttpHeaders);
    });
    up.once('response', (h, rflags) => {
      status = Number(h[':status']);
      if (stream.destroyed) return;
      const ended = (rflags & NGHTTP2_FLAG_END_STREAM) !== 0;
      const expectTrailers = !ended && (String(h['content-type'] ?? '').startsWith('application/grpc') || h['trailer'] !== undefined);
      stream.respond(h2Headers(h) as http2.OutgoingHttpHeaders, { endStream: ended, waitForTrailers: expectTrailers });
      if (!ended) up.pipe(stream);
    });
    up.on('trailers', (t) => {
      trailers = t;
    });
    stream.on('wantTrailers', () => {
      if (trailers) stream.sendTrailers(h2Headers(trailers) as http2.OutgoingHttpHeaders);
      else stream.close();
    });
    if (!endStream) stream.pipe(up);
    // Resets in either direction: a client cancel (gRPC deadline, RST_STREAM) cancels upstream; an
    // upstream reset is passed back with its code, or becomes a 503 before any response started.
    stream.once('close', () => {
      if (!up.closed && !up.destroyed) up.close(stream.rstCode && stream.rstCode !== NGHTTP2_NO_ERROR ? stream.rstCode : NGHTTP2_CANCEL);
      this.o.metrics.request(route.labels, protocol, status, performance.now() - t0);
    });
    up.once('close', () => {
      if (stream.destroyed || stream.closed) return;
      const code = up.rstCode ?? NGHTTP2_NO_ERROR;
      if (code !== NGHTTP2_NO_ERROR) {
        if (!stream.headersSent) stream.respond({ ':status': 503 }, { endStream: true });
        else stream.close(code === NGHTTP2_CANCEL ? NGHTTP2_CANCEL : NGHTTP2_INTERNAL_ERROR);
      }
    });
  }

  private answer(stream: ServerHttp2Stream, status: number, route: Route | undefined, t0: number): void {
    if (!stream.destroyed && !stream.headersSent) stream.respond({ ':status': status }, { endStream: true });
    if (route) this.o.metrics.request(route.labels, 'http', status, performance.now() - t0);
  }

  /** Graceful drain: GOAWAY to every client connection; in-flight streams finish. */
  drain(): void {
    for (const s of this.sessions) s.close();
  }

  close(): void {
    for (const s of this.sessions) s.destroy();
    for (const p of this.upstream.values()) p.then((s) => s.destroy(), () => {});
  }
}
