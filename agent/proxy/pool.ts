// Outgoing tunnel connections: one mTLS (TLS 1.3) HTTP/2 connection per (source identity, destination
// identity, destination node), pooled and shared by every stream between that pair. The client presents
// the source workload's certificate and insists the server proves the destination workload's identity.
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import tls, { type SecureContext } from 'node:tls';
import type { CertificateProvider } from '../../common/identity.js';
import type { Logger } from '../../common/log.js';
import type { AgentMetrics } from '../metrics/agent-health.js';
import { TunnelPeerError, UpstreamError } from './errors.js';
import { expectIdentity, handshakeReason, sniFor } from './spiffe.js';

export interface TunnelAddress {
  host: string;
  port: number;
}

export interface TunnelPoolOptions {
  certs: CertificateProvider;
  log: Logger;
  metrics: AgentMetrics;
  /** close a tunnel connection with no open streams after this long */
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  /** per-stream HTTP/2 receive window; large enough that one stream fills a fast link */
  streamWindow: number;
  /** per-connection HTTP/2 receive window */
  connectionWindow: number;
  /** largest HTTP/2 frame we accept (SETTINGS_MAX_FRAME_SIZE) */
  maxFrameSize: number;
}

export interface TunnelStreamRequest {
  sourceId: string;
  destinationId: string;
  node: TunnelAddress;
  /** the original destination (pod ip:port), the CONNECT authority */
  authority: string;
  /** extra request headers for the peer proxy (baggage); never reach the pod */
  headers?: OutgoingHttpHeaders;
}

export class TunnelPool {
  private readonly sessions = new Map<string, Promise<ClientHttp2Session>>();
  // One TLS context per source identity (its certificate, key and the trust bundle), shared by every
  // connection that identity opens: building one parses the PEMs and loads the CA store, which the
  // plain cert/key/ca options to http2.connect would redo for each connection.
  private readonly contexts = new Map<string, Promise<SecureContext>>();
  private readonly unsubscribe: () => void;

  constructor(private readonly opts: TunnelPoolOptions) {
    // New certificates or trust bundle: new contexts; let current connections finish their streams, open new ones.
    // A new trust bundle changes every handshake: every context is rebuilt and every connection drained.
    // A renewed certificate concerns one source identity: only its context and its connections (GOAWAY:
    // streams in flight finish, new ones open a connection with the new certificate).
    this.unsubscribe = opts.certs.onChange((change) => {
      if (change.trustBundle) {
        this.contexts.clear();
        this.drain();
        return;
      }
      for (const id of change.spiffeIds) {
        this.contexts.delete(id);
        this.drain(id);
      }
    });
  }

  /** The TLS context tunnel connections from this source identity use (built once per certificate). */
  secureContext(sourceId: string): Promise<SecureContext> {
    let ctx = this.contexts.get(sourceId);
    if (!ctx) {
      const { certs } = this.opts;
      ctx = certs.get(sourceId).then((cert) =>
        tls.createSecureContext({ ca: certs.trustBundlePem(), cert: cert.certChainPem, key: cert.keyPem, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }),
      );
      this.contexts.set(sourceId, ctx);
      ctx.catch(() => this.contexts.get(sourceId) === ctx && this.contexts.delete(sourceId));
    }
    return ctx;
  }

  /**
   * Opens a CONNECT stream and waits for the peer's 200. Rejects with UpstreamError/TunnelPeerError.
   * A stream the peer refused unprocessed (REFUSED_STREAM: a GOAWAY from a peer agent handing over to its
   * successor raced our request) is opened once more on a new connection; HTTP/2 guarantees the peer did
   * nothing with it, so this is safe for any request.
   */
  async connect(req: TunnelStreamRequest): Promise<ClientHttp2Stream> {
    try {
      return await this.connectOnce(req);
    } catch (e) {
      if (!(e instanceof RefusedUnprocessed)) throw e;
      return this.connectOnce(req).catch((err: unknown) => {
        throw err instanceof RefusedUnprocessed ? err.error : err;
      });
    }
  }

  private async connectOnce(req: TunnelStreamRequest): Promise<ClientHttp2Stream> {
    const session = await this.session(req.sourceId, req.destinationId, req.node);
    if (session.closed || session.destroyed) {
      this.forgetSession(req, session);
      throw new RefusedUnprocessed(new UpstreamError('tunnel_stream', `tunnel connection to ${req.node.host}:${req.node.port} is closing`));
    }
    const stream = buffersOnly(session.request({ ':method': 'CONNECT', ':authority': req.authority, ...req.headers }, { endStream: false }));
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        const e = new UpstreamError('tunnel_stream', `tunnel stream to ${req.authority} via ${req.node.host}:${req.node.port} failed: ${err.message}`, { cause: err });
        // only after the peer's graceful GOAWAY: a peer that refused our certificate also refuses streams
        // and on a connection that has carried a stream before (a peer rejecting us never did)
        const unprocessed = stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM && gracefulGoaway.has(session) && proven.has(session);
        reject(unprocessed ? new RefusedUnprocessed(e) : e);
      };
      stream.once('error', onError);
      // A session that dies (e.g. the server rejected our certificate after a TLS 1.3 handshake the client
      // already considered complete) closes its streams without an error of their own.
      stream.once('close', () => onError(new Error(`stream closed before a response (code ${stream.rstCode}); the peer proxy may have refused this node's certificate, see its log`)));
      stream.once('response', (headers) => {
        stream.off('error', onError);
        const status = Number(headers[':status']);
        if (status === 200) {
          proven.add(session);
          return resolve(stream);
        }
        stream.close(http2.constants.NGHTTP2_CANCEL);
        const reason = status === 403 ? 'denied' : status === 421 ? 'misdirected' : 'refused';
        reject(new UpstreamError(reason, `peer proxy ${req.node.host}:${req.node.port} answered ${status} to CONNECT ${req.authority}`, { details: { status } }));
      });
    });
  }

  private forgetSession(req: TunnelStreamRequest, session: ClientHttp2Session): void {
    const key = `${req.sourceId}|${req.destinationId}|${req.node.host}:${req.node.port}`;
    const current = this.sessions.get(key);
    current?.then((s) => s === session && this.sessions.get(key) === current && this.sessions.delete(key), () => {});
  }

  session(sourceId: string, destinationId: string, node: TunnelAddress): Promise<ClientHttp2Session> {
    const key = `${sourceId}|${destinationId}|${node.host}:${node.port}`;
    let s = this.sessions.get(key);
    if (!s) {
      s = this.open(key, sourceId, destinationId, node);
      this.sessions.set(key, s);
      s.catch(() => this.sessions.delete(key));
    }
    return s;
  }

  private async open(key: string, sourceId: string, destinationId: string, node: TunnelAddress): Promise<ClientHttp2Session> {
    const { log, metrics } = this.opts;
    const secureContext = await this.secureContext(sourceId);
    const session = http2.connect(`https://${node.host}:${node.port}`, {
      secureContext,
      servername: sniFor(destinationId),
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ALPNProtocols: ['h2'],
      checkServerIdentity: expectIdentity(destinationId),
      settings: { enablePush: false, initialWindowSize: this.opts.streamWindow, maxFrameSize: this.opts.maxFrameSize },
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => session.destroy(new UpstreamError('tunnel_timeout', `tunnel handshake with ${node.host}:${node.port} timed out; is port ${node.port} reachable from this node?`)), this.opts.connectTimeoutMs);
      const onError = (err: Error) => {
        clearTimeout(timer);
        const reason = handshakeReason(err);
        metrics.tunnelHandshakeFailures.inc({ side: 'client', reason });
        log.warn('tunnel handshake refused', { peer: `${node.host}:${node.port}`, source: sourceId, expected: destinationId, reason, error: err });
        reject(err instanceof TunnelPeerError ? err : new TunnelPeerError(reason, `tunnel to ${node.host}:${node.port} (expecting ${destinationId}) failed: ${err.message}`, { cause: err }));
      };
      // 'on', not 'once': a second error before 'connect' must not go unhandled.
      session.on('error', onError);
      session.once('connect', () => {
        clearTimeout(timer);
        session.off('error', onError);
        session.on('error', (err) => {
          // In TLS 1.3 the server judges our certificate after our handshake finished: its verdict arrives here.
          const reason = handshakeReason(err);
          if (reason !== 'other' && reason !== 'network') metrics.tunnelHandshakeFailures.inc({ side: 'client', reason: `peer_${reason}` });
          log.warn('tunnel connection failed', { peer: `${node.host}:${node.port}`, source: sourceId, reason, error: err });
        });
        session.setLocalWindowSize(this.opts.connectionWindow);
        session.setTimeout(this.opts.idleTimeoutMs, () => session.close());
        const forget = () => {
          const current = this.sessions.get(key);
          current?.then((s) => s === session && this.sessions.get(key) === current && this.sessions.delete(key), () => {});
        };
        session.once('close', forget);
        session.once('goaway', (code: number) => {
          if (code === http2.constants.NGHTTP2_NO_ERROR) gracefulGoaway.add(session);
          forget();
        });
        resolve(session);
      });
    });
  }

  /** Stop handing out current connections; they close once their streams finish. */
  /** GOAWAY to every tunnel connection, or to those of one source identity. */
  drain(sourceId?: string): void {
    for (const [key, s] of this.sessions) {
      if (sourceId !== undefined && !key.startsWith(`${sourceId}|`)) continue;
      this.sessions.delete(key);
      s.then((session) => session.close(), () => {});
    }
  }

  close(): void {
    this.unsubscribe();
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) s.then((session) => session.destroy(), () => {});
  }
}

/** Sessions whose peer said GOAWAY without an error (it drains, e.g. hands over to a successor agent). */
const gracefulGoaway = new WeakSet<ClientHttp2Session>();
/** Sessions on which the peer accepted a CONNECT. */
const proven = new WeakSet<ClientHttp2Session>();

/** A tunnel stream the peer never processed: safe to open again on another connection. */
class RefusedUnprocessed extends Error {
  constructor(readonly error: UpstreamError) {
    super(error.message);
  }
}

/**
 * Node 20's Http2Stream corrupts string chunks in a vectored write (the first bytes of a POST that
 * http.ClientRequest writes as a latin1 head plus a body arrived as garbage at the pod): hand it Buffers only.
 */
function buffersOnly(stream: ClientHttp2Stream): ClientHttp2Stream {
  const s = stream as unknown as { _writev?: (chunks: { chunk: unknown; encoding: BufferEncoding }[], cb: (err?: Error | null) => void) => void };
  const writev = s._writev;
  if (writev) {
    s._writev = function (chunks, cb) {
      const bufs = chunks.map((c) => (typeof c.chunk === 'string' ? { chunk: Buffer.from(c.chunk, c.encoding), encoding: 'buffer' as BufferEncoding } : c));
      (bufs as unknown as { allBuffers: boolean }).allBuffers = true;
      return writev.call(this, bufs, cb);
    };
  }
  return stream;
}
