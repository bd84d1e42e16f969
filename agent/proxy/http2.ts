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
import { RequestContext, type ConnectionContext } from '../pipeline/context.js';
import type { Pipeline, UpstreamExchange } from '../pipeline/pipeline.js';
import type { AttemptResult, ForwardAction, HeaderEdits, LocalResponse, WeightedBackend } from '../pipeline/stages.js';
import type { Route } from './destination.js';
import { h2Headers } from './h2-headers.js';
import { resetStream } from './h2-reset.js';
import { chosenMirrors, shadowHost } from '../routing/mirror.js';
import { ReplayBody } from '../routing/replay-body.js';
import type { RoutedForward } from '../routing/router.js';
import { authority, type Upstreams } from './upstream.js';

export interface Http2Options {
  pipeline: Pipeline;
  upstreams: Upstreams;
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

export type H2Limits = Pick<Http2Options, 'maxHeaderSize' | 'streamWindow' | 'connectionWindow' | 'maxConcurrentStreams' | 'idleTimeoutMs'>;

/** The non-listening HTTP/2 server that terminates client sessions (a pod's on the source side, a peer proxy's in the tunnel). */
export function h2Server(o: H2Limits): http2.Http2Server {
  const server = http2.createServer({
    maxHeaderListPairs: 256,
    maxSendHeaderBlockLength: o.maxHeaderSize,
    settings: { enablePush: false, maxConcurrentStreams: o.maxConcurrentStreams, initialWindowSize: o.streamWindow, maxHeaderListSize: o.maxHeaderSize },
  });
  server.setTimeout(o.idleTimeoutMs);
  return server;
}

/** One incoming stream's RequestContext: gRPC by content-type, the raw header list without pseudo-headers. */
export function h2RequestContext(conn: ConnectionContext, headers: IncomingHttpHeaders, rawHeaders: string[]): RequestContext {
  const grpc = String(headers['content-type'] ?? '').startsWith('application/grpc');
  const regular: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.charCodeAt(0) !== 58 /* ':' */) regular.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  return new RequestContext(conn, grpc ? 'grpc' : 'http2', String(headers[':method'] ?? ''), String(headers[':path'] ?? ''), String(headers[':authority'] ?? headers['host'] ?? ''), headers[':scheme'] === 'https' ? 'https' : 'http', regular);
}

export class Http2Proxy implements SessionSource {
  readonly keepsBodies = true;
  readonly server: http2.Http2Server;
  private readonly conns = new WeakMap<Http2Session, ConnectionContext>();
  private pending: ConnectionContext | undefined;
  /** upstream sessions, keyed by source pod first: a session opened for one pod never carries another's streams */
  private readonly upstream = new Map<string, Promise<ClientHttp2Session>>();
  private readonly sessions = new Set<Http2Session>();

  constructor(private readonly o: Http2Options) {
    this.server = h2Server(o);
    this.server.on('session', (session) => {
      // 'connection' → 'session' is synchronous, so the context set by handle() is this session's.
      if (this.pending) this.conns.set(session, this.pending);
      this.pending = undefined;
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      session.on('error', () => {});
      session.setLocalWindowSize(o.connectionWindow);
    });
    // Node passes the raw header list as a fourth argument (its types stop at three).
    const onStream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void this.onStream(stream, headers, flags, rawHeaders);
    this.server.on('stream', onStream as unknown as (s: ServerHttp2Stream, h: IncomingHttpHeaders, f: number) => void);
  }

  handle(socket: Socket, ctx: ConnectionContext): void {
    const done = this.o.connections.track('outbound', { source: ctx.source.principal ?? 'unknown', destination: `${ctx.original.ip}:${ctx.original.port}`, protocol: 'http2' }, () => socket.destroy());
    socket.once('close', done);
    this.pending = ctx;
    this.server.emit('connection', socket);
    this.pending = undefined;
  }

  /** The pooled session for a route; each call is for one stream (the caller opens it at once). */
  upstreamSession(ctx: ConnectionContext, route: Route): Promise<ClientHttp2Session> {
    const svc = ctx.service ? `${ctx.service.service.namespace}/${ctx.service.service.name}` : '';
    const key = `${ctx.source.poolKey}|${route.kind}|${route.ip}:${route.port}|${svc}`;
    let p = this.upstream.get(key);
    if (!p) {
      p = this.connectUpstream(ctx, route);
      this.upstream.set(key, p);
      const forget = () => this.upstream.get(key) === p && this.upstream.delete(key);
      p.then((s) => {
        s.once('close', forget);
        s.once('goaway', forget);
        s.on('error', () => {});
      }, forget);
    }
    const max = route.limits?.maxRequestsPerConnection;
    if (max) {
      // maxRequestsPerConnection: the session that carries its max-th stream leaves the pool and is closed
      // gracefully once that stream is open (setImmediate runs after the caller's request() on it).
      const n = (this.streamsOn.get(p) ?? 0) + 1;
      this.streamsOn.set(p, n);
      if (n >= max) {
        if (this.upstream.get(key) === p) this.upstream.delete(key);
        p.then((s) => setImmediate(() => s.close()), () => {});
      }
    }
    return p;
  }

  /** streams opened on each pooled session, counted only for Services with maxRequestsPerConnection */
  private readonly streamsOn = new WeakMap<Promise<ClientHttp2Session>, number>();

  /** How many upstream sessions are pooled (tests). */
  get upstreamSessions(): number {
    return this.upstream.size;
  }

  private async connectUpstream(ctx: ConnectionContext, route: Route): Promise<ClientHttp2Session> {
    const settings = { enablePush: false, initialWindowSize: this.o.streamWindow };
    // The same upstreams as HTTP/1: a CONNECT stream through the tunnel, or a TCP connection to a pod on this
    // node (from the caller's address when transparent) or outside the mesh, with the Service's connectTimeout.
    const socket = await this.o.upstreams.open(ctx, route, 'h2');
    const session = http2.connect(`http://${authority(route.ip, route.port)}`, { settings, createConnection: () => socket });
    await new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.on('error', reject);
    });
    session.setLocalWindowSize(this.o.connectionWindow);
    // idle: no stream for this long (TrafficPolicy connectionPool.http.idleTimeout, else the proxy's own)
    session.setTimeout(route.limits?.idleTimeoutMs ?? this.o.idleTimeoutMs, () => session.close());
    return session;
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]): Promise<void> | void {
    stream.on('error', () => {});
    const conn = this.conns.get(stream.session!);
    if (!conn) return void (stream.destroyed || stream.respond({ ':status': 503 }, { endStream: true }));
    const ctx = h2RequestContext(conn, headers, rawHeaders);
    const ex = new Http2Exchange(this, this.o, ctx, stream, headers, (flags & NGHTTP2_FLAG_END_STREAM) !== 0);
    return this.o.pipeline.forward(ctx, ex);
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

/** Applies header edits to an HTTP/2 header object (lower-case names). */
function editH2(h: Record<string, unknown>, e: HeaderEdits | undefined): void {
  if (!e) return;
  for (const n of e.remove ?? []) delete h[n.toLowerCase()];
  for (const [n, v] of e.set ?? []) h[n.toLowerCase()] = v;
  for (const [n, v] of e.add ?? []) {
    const k = n.toLowerCase();
    const cur = h[k];
    h[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [String(cur), v];
  }
}

/** Where an exchange gets the upstream HTTP/2 session for a route (pooled per source pod, or one per tunnel stream). */
export interface SessionSource {
  upstreamSession(ctx: ConnectionContext, route: Route): Promise<ClientHttp2Session>;
  /** false: a stream is sent once and never mirrored (the destination half), so its body is not kept */
  readonly keepsBodies: boolean;
}

/** One stream's exchange: one upstream stream per attempt, its response held until the pipeline commits. */
export class Http2Exchange implements UpstreamExchange {
  /** the request body kept for retries (a gRPC unary call's message; agent/routing/replay-body.ts) */
  private readonly body: ReplayBody | undefined;
  private up: http2.ClientHttp2Stream | undefined;
  private responseHead: IncomingHttpHeaders | undefined;
  private responseEnded = false;
  private trailers: IncomingHttpHeaders | undefined;
  private settle: ((r: AttemptResult) => void) | undefined;
  private action: ForwardAction | undefined;
  private wb: WeightedBackend | undefined;
  private bodySent = false;

  constructor(
    private readonly proxy: SessionSource,
    private readonly o: Pick<Http2Options, 'pipeline' | 'log'>,
    private readonly ctx: RequestContext,
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly endStream: boolean,
  ) {
    const cl = headers['content-length'];
    this.body = endStream || !proxy.keepsBodies ? undefined : new ReplayBody(cl === undefined ? undefined : Number(cl));
    // A client cancel (gRPC deadline, RST_STREAM) cancels upstream.
    stream.once('close', () => {
      const up = this.up;
      if (up && !up.closed && !up.destroyed) up.close(stream.rstCode && stream.rstCode !== NGHTTP2_NO_ERROR ? stream.rstCode : NGHTTP2_CANCEL);
      if (stream.rstCode && stream.rstCode !== NGHTTP2_NO_ERROR) ctx.outcome.flags.push('DC');
      // Closed before any answer went out: the client gave up on the request.
      const gone = stream.headersSent ? undefined : this.gone;
      this.gone = undefined;
      gone?.();
      this.settle?.({ status: 0, error: 'reset', sent: true });
    });
  }

  private gone: (() => void) | undefined;

  onGone(f: (() => void) | undefined): void {
    this.gone = f;
  }

  /** No body, or the whole body (at most 64 KiB) has been kept: the stream can be sent again. */
  get replayable(): boolean {
    return this.endStream || (this.body?.replayable ?? false);
  }

  async send(route: Route, action: ForwardAction, wb: WeightedBackend): Promise<AttemptResult> {
    if (!this.action && (action as RoutedForward).mirrors) this.mirror(action as RoutedForward);
    this.wb = wb;
    this.action = action;
    let session: ClientHttp2Session;
    try {
      session = await this.proxy.upstreamSession(this.ctx.connection, route);
    } catch (err) {
      this.o.log.warn('http2 upstream unavailable', { destination: `${this.ctx.connection.original.ip}:${this.ctx.connection.original.port}`, endpoint: `${route.ip}:${route.port}`, error: err });
      return { status: 0, error: (err as { reason?: string }).reason ?? 'connect_failed', sent: false };
    }
    const stream = this.stream;
    if (stream.destroyed) return { status: 0, error: 'reset', sent: false };
    const h = h2Headers(this.headers) as Record<string, unknown>;
    editH2(h, action.requestHeaders);
    editH2(h, wb.requestHeaders);
    if (action.rewrite?.path) h[':path'] = action.rewrite.path;
    if (action.rewrite?.authority) h[':authority'] = action.rewrite.authority;
    let up: http2.ClientHttp2Stream;
    try {
      up = session.request(h as http2.OutgoingHttpHeaders, { endStream: this.endStream });
    } catch (err) {
      this.o.log.warn('http2 upstream request failed', { error: err });
      return { status: 0, error: 'reset', sent: false };
    }
    this.up = up;
    this.responseHead = undefined;
    this.trailers = undefined;
    up.on('error', () => {});
    // Trailers are emitted whether or not the stream is paused, possibly in the same tick as the head:
    // keep them from the start, not from commit().
    up.on('trailers', (t) => {
      if (this.up !== up) return;
      this.trailers = t;
      const gs = t['grpc-status'];
      if (gs !== undefined) this.ctx.outcome.grpcStatus = Number(gs);
    });
    return new Promise<AttemptResult>((resolve) => {
      this.settle = (r) => {
        this.settle = undefined;
        resolve(r);
      };
      up.on('headers', (info) => {
        // 1xx informational responses.
        if (!stream.destroyed && !stream.headersSent) stream.additionalHeaders(h2Headers(info) as http2.OutgoingHttpHeaders);
      });
      up.once('response', (rh, rflags) => {
        this.responseHead = rh;
        this.responseEnded = (rflags & NGHTTP2_FLAG_END_STREAM) !== 0;
        up.pause();
        const gs = rh['grpc-status'];
        this.settle?.({ status: Number(rh[':status']), grpcStatus: gs === undefined ? undefined : Number(gs), sent: true });
      });
      up.once('close', () => {
        if (!this.responseHead) this.settle?.({ status: 0, error: 'reset', sent: true });
      });
      if (!this.endStream) {
        if (this.bodySent) {
          if (this.body?.replayable) return void up.end(this.body.bytes());
          up.close(NGHTTP2_CANCEL);
          return this.settle?.({ status: 0, error: 'reset', sent: false });
        }
        this.bodySent = true;
        const body = this.body;
        const o = this.ctx.outcome;
        stream.on('data', (c: Buffer) => {
          o.bytesReceived += c.length;
          this.ctx.touch();
          body?.add(c);
        });
        if (body) stream.once('end', () => body.end());
        stream.pipe(up);
      }
    });
  }

  /**
   * RequestMirror copies, as on HTTP/1 (h1/exchange.ts): fire-and-forget on the mirror backend's pooled
   * session, the response read and dropped; a body only when kept whole (<= 64 KiB), else the copy is skipped.
   */
  private mirror(action: RoutedForward): void {
    const targets = chosenMirrors(action.mirrors);
    if (targets.length === 0) return;
    const go = () => {
      const body = this.endStream ? undefined : this.body!.replayable ? this.body!.bytes() : null;
      for (const m of targets) {
        const ep = m.backend && body !== null ? this.o.pipeline.stages.traffic.pick(this.ctx, m.backend, []) : undefined;
        if (!m.backend || !ep) {
          m.count(body === null ? 'skipped' : 'failed');
          continue;
        }
        const route = this.o.pipeline.routeTo(this.ctx.connection, ep, m.backend);
        const h = h2Headers(this.headers) as Record<string, unknown>;
        h[':authority'] = shadowHost(String(this.headers[':authority'] ?? this.ctx.authority));
        if (action.rewrite?.path) h[':path'] = action.rewrite.path;
        this.proxy.upstreamSession(this.ctx.connection, route).then(
          (session) => {
            let copy: http2.ClientHttp2Stream;
            try {
              copy = session.request(h as http2.OutgoingHttpHeaders, { endStream: body === undefined });
            } catch {
              return m.count('failed');
            }
            let answered = false;
            copy.on('error', () => {});
            copy.once('response', () => {
              answered = true;
              m.count('sent');
            });
            copy.once('close', () => {
              if (!answered) m.count('failed');
            });
            copy.resume();
            if (body !== undefined) copy.end(body);
          },
          () => m.count('failed'),
        );
      }
    };
    if (this.endStream) return go();
    // after the whole request body is in (and kept, when it fits)
    this.stream.once('end', () => setImmediate(go));
  }

  commit(): Promise<void> {
    const up = this.up!;
    const h = this.responseHead!;
    const stream = this.stream;
    return new Promise<void>((resolve) => {
      if (stream.destroyed || stream.closed) {
        up.close(NGHTTP2_CANCEL);
        return resolve();
      }
      stream.once('close', () => resolve());
      const out = h2Headers(h) as Record<string, unknown>;
      editH2(out, this.action?.responseHeaders);
      editH2(out, this.wb?.responseHeaders);
      const ended = this.responseEnded;
      const expectTrailers = !ended && (String(h['content-type'] ?? '').startsWith('application/grpc') || h['trailer'] !== undefined);
      stream.on('wantTrailers', () => {
        const trailers = this.trailers;
        if (trailers) stream.sendTrailers(h2Headers(trailers) as http2.OutgoingHttpHeaders);
        else stream.close();
      });
      stream.respond(out as http2.OutgoingHttpHeaders, { endStream: ended, waitForTrailers: expectTrailers });
      if (!ended) {
        // Not ended by the pipe: a reset upstream also emits 'end', and the client must see the reset.
        const ctx = this.ctx;
        const o = ctx.outcome;
        up.on('data', (c: Buffer) => {
          o.bytesSent += c.length;
          ctx.touch();
        });
        up.pipe(stream, { end: false });
        up.resume();
      }
      // The response ends when the upstream stream closes: cleanly, or passed back as a reset with its code.
      up.once('close', () => {
        if (stream.destroyed || stream.closed) return;
        const code = up.rstCode ?? NGHTTP2_NO_ERROR;
        if (code !== NGHTTP2_NO_ERROR) resetStream(stream, code === NGHTTP2_CANCEL ? NGHTTP2_CANCEL : NGHTTP2_INTERNAL_ERROR);
        else if (!ended && !stream.writableEnded) stream.end();
      });
    });
  }

  discard(): void {
    const up = this.up;
    if (up && !up.closed) up.close(NGHTTP2_CANCEL);
    this.up = undefined;
  }

  abort(): void {
    const up = this.up;
    if (this.settle) {
      if (up && !up.closed) up.close(NGHTTP2_CANCEL);
      this.settle({ status: 0, error: 'timeout', sent: true });
    } else if (!this.stream.closed) {
      // Unpiped and reset first: closing `up` first would end the piped client stream cleanly (END_STREAM),
      // and a client must see a cut response as a reset, not as a complete one.
      up?.unpipe(this.stream);
      if (this.stream.headersSent) resetStream(this.stream, NGHTTP2_CANCEL);
      if (up && !up.closed) up.close(NGHTTP2_CANCEL);
    }
  }

  reply(r: LocalResponse): void {
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    if (stream.headersSent) return void resetStream(stream, NGHTTP2_INTERNAL_ERROR);
    const h: Record<string, string> = {};
    for (const [n, v] of r.headers ?? []) h[n.toLowerCase()] = v;
    if (this.ctx.protocol === 'grpc' && r.grpcStatus !== undefined) {
      // gRPC: trailers-only response carrying the status (HTTP 200).
      stream.respond({ ...h, ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(r.grpcStatus), ...(r.grpcMessage ? { 'grpc-message': encodeURIComponent(r.grpcMessage) } : {}) }, { endStream: true });
      return;
    }
    if (r.body) {
      stream.respond({ 'content-type': 'text/plain', ...h, ':status': r.status, 'content-length': String(Buffer.byteLength(r.body)) });
      stream.end(r.body);
    } else {
      stream.respond({ ...h, ':status': r.status }, { endStream: true });
    }
  }
}
