// The destination half per stream, cross node, for HTTP/2 and gRPC: a tunnel CONNECT stream announced as
// `x-weft-protocol: h2` carries the source proxy's HTTP/2 session to the pod. This side terminates that
// session (a non-listening node:http2 server over the CONNECT stream), authorizes and admits each stream
// (gRPC: PERMISSION_DENIED as a trailers-only response), and forwards the admitted ones on an HTTP/2 session
// to the pod that belongs to this tunnel stream alone (the source pools per source pod, so the pod's session
// never carries two callers). The pod connection is opened before the CONNECT is answered, so a pod that
// refuses fails the stream at the source (connect-failure).
import http2, { type ClientHttp2Session, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../common/log.js';
import type { ConnectionContext } from '../pipeline/context.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { Route } from './destination.js';
import { h2RequestContext, h2Server, Http2Exchange, type H2Limits, type SessionSource } from './http2.js';
import type { Delivery } from './inbound-http1.js';
import { authority } from './upstream.js';

export interface InboundHttp2Options extends H2Limits {
  pipeline: Pipeline;
  log: Logger;
}

const { NGHTTP2_FLAG_END_STREAM } = http2.constants;

interface SessionState {
  delivery: Delivery;
  /** the pod's session for this tunnel stream; the first rides the connection opened before the CONNECT answer */
  pod: Promise<ClientHttp2Session> | undefined;
  first: Duplex | undefined;
  session?: Http2Session;
}

export class InboundHttp2 implements SessionSource {
  /** one attempt at the pod: the source keeps bodies for its retries, this side need not copy them */
  readonly keepsBodies = false;
  private readonly server: http2.Http2Server;
  private readonly sessions = new Map<Http2Session, SessionState>();
  private readonly byCtx = new WeakMap<ConnectionContext, SessionState>();
  private pending: SessionState | undefined;

  constructor(private readonly o: InboundHttp2Options) {
    this.server = h2Server(o);
    this.server.on('session', (session: Http2Session) => {
      // 'connection' → 'session' is synchronous: the state set by serve() is this session's.
      const s = this.pending;
      this.pending = undefined;
      if (!s) return void session.destroy();
      s.session = session;
      this.sessions.set(session, s);
      this.byCtx.set(s.delivery.ctx, s);
      session.on('error', () => {});
      session.setLocalWindowSize(o.connectionWindow);
    });
    const onStream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => this.onStream(stream, headers, flags, rawHeaders);
    this.server.on('stream', onStream as unknown as (s: ServerHttp2Stream, h: IncomingHttpHeaders, f: number) => void);
  }

  /** Serves a tunnel stream whose pod connection `pod` is already open; resolves when the stream is over. */
  serve(stream: Duplex, delivery: Delivery, pod: Duplex): Promise<void> {
    const s: SessionState = { delivery, pod: undefined, first: pod };
    this.pending = s;
    this.server.emit('connection', stream);
    this.pending = undefined;
    const session = s.session;
    return new Promise<void>((resolve) => {
      const done = () => {
        if (session) this.sessions.delete(session);
        s.first?.destroy();
        s.first = undefined;
        s.pod?.then((p) => p.destroy(), () => {});
        resolve();
      };
      if (!session) return done();
      session.once('close', done);
      stream.once('close', () => session.destroy());
    });
  }

  upstreamSession(ctx: ConnectionContext, route: Route): Promise<ClientHttp2Session> {
    const s = this.byCtx.get(ctx)!;
    if (!s.pod) {
      const p = this.connectPod(s, route);
      s.pod = p;
      // A pod session that closed is replaced at the next stream.
      const forget = () => s.pod === p && (s.pod = undefined);
      p.then((sess) => {
        sess.once('close', forget);
        sess.once('goaway', forget);
        sess.on('error', () => {});
      }, forget);
    }
    return s.pod;
  }

  private async connectPod(s: SessionState, route: Route): Promise<ClientHttp2Session> {
    const socket = s.first ?? (await s.delivery.connect());
    s.first = undefined;
    const session = http2.connect(`http://${authority(route.ip, route.port)}`, { settings: { enablePush: false, initialWindowSize: this.o.streamWindow }, createConnection: () => socket });
    await new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.once('error', reject);
    });
    session.setLocalWindowSize(this.o.connectionWindow);
    return session;
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]): void {
    stream.on('error', () => {});
    const s = this.sessions.get(stream.session!);
    if (!s) return void (stream.destroyed || stream.respond({ ':status': 503 }, { endStream: true }));
    const ctx = h2RequestContext(s.delivery.ctx, headers, rawHeaders);
    const ex = new Http2Exchange(this, this.o, ctx, stream, headers, (flags & NGHTTP2_FLAG_END_STREAM) !== 0);
    void this.o.pipeline.deliver(ctx, ex, s.delivery.route);
  }

  /** GOAWAY on every tunnel stream's session: streams in flight finish. */
  drain(): void {
    for (const sess of this.sessions.keys()) sess.close();
  }
}
