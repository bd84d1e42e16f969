// The tunnel listener (15008): other node proxies open mTLS (TLS 1.3) HTTP/2 connections here and send
// one CONNECT stream per proxied connection, with the destination pod ip:port as :authority. The server
// presents the certificate of the identity the client asked for in SNI (the destination workload's),
// verifies the client's against the trust bundle, checks policy, then connects to the pod.
import http2, { type Http2SecureServer, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import tls, { type SecureContext, type TLSSocket } from 'node:tls';
import type { CertificateProvider } from '../../common/identity.js';
import type { Workload } from '../../common/mesh.js';
import { newConnectionContext, sourceFromPeer } from '../pipeline/context.js';
import type { LabelWorkload } from './destination.js';
import { TunnelPeerError } from './errors.js';
import { handshakeReason, sniFor, spiffeIdsOf, trustDomainOf } from './spiffe.js';
import { connectTcp, PROTOCOL_HEADER } from './upstream.js';
import type { Route } from './destination.js';
import { deliverLocal, refusalReason, type DestinationSideOptions, type TunnelHttp } from './local-delivery.js';

export type { TunnelHttp };

export interface InboundOptions extends DestinationSideOptions {
  certs: CertificateProvider;
  streamWindow: number;
  connectionWindow: number;
  maxFrameSize: number;
  maxConcurrentStreams: number;
}

interface PeerInfo {
  principal: string;
  /** the local identity the client asked this node to present */
  servedId: string;
}

export class InboundTunnel {
  readonly server: Http2SecureServer;
  private readonly contexts = new Map<string, Promise<SecureContext>>();
  private sniIndex: Map<string, string> | undefined;
  private readonly peers = new WeakMap<Http2Session, PeerInfo>();
  private readonly sessions = new Set<Http2Session>();
  private readonly unsub: Array<() => void> = [];

  constructor(private readonly o: InboundOptions) {
    this.server = http2.createSecureServer({
      SNICallback: (servername, cb) => {
        this.contextFor(servername).then((ctx) => cb(null, ctx), (err: Error) => cb(err, undefined));
      },
      ca: o.certs.trustBundlePem(),
      requestCert: true,
      // Node would verify and then just drop the socket, with no word on why; we check `authorized` on each
      // session ourselves so the refusal carries a reason (metric label, log line).
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ALPNProtocols: ['h2'],
      allowHTTP1: false,
      settings: { enablePush: false, initialWindowSize: o.streamWindow, maxFrameSize: o.maxFrameSize, maxConcurrentStreams: o.maxConcurrentStreams },
    });
    this.server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      const reason = handshakeReason(err);
      o.agentMetrics.tunnelHandshakeFailures.inc({ side: 'server', reason });
      o.log.warn('tunnel peer refused', { peer: `${socket.remoteAddress}:${socket.remotePort}`, reason, error: err });
    });
    this.server.on('session', (session) => this.onSession(session));
    this.server.on('stream', (stream, headers) => this.onStream(stream, headers));
    this.unsub.push(
      o.certs.onChange((change) => {
        // a renewed certificate: only that identity's context is rebuilt (open sessions carry on)
        for (const id of change.spiffeIds) this.contexts.delete(id);
        if (change.trustBundle) {
          this.contexts.clear();
          this.server.setSecureContext({ ca: o.certs.trustBundlePem() });
        }
      }),
      o.state.onUpdate(() => {
        this.sniIndex = undefined;
      }),
    );
  }

  private identityForSni(servername: string): string | undefined {
    if (!this.sniIndex) {
      this.sniIndex = new Map();
      for (const w of this.o.state.localWorkloads()) {
        const id = this.o.state.identityOf(w);
        this.sniIndex.set(sniFor(id), id);
      }
    }
    return this.sniIndex.get(servername);
  }

  private contextFor(servername: string): Promise<SecureContext> {
    const id = this.identityForSni(servername);
    if (!id) {
      this.o.agentMetrics.tunnelHandshakeFailures.inc({ side: 'server', reason: 'unknown_identity' });
      return Promise.reject(new TunnelPeerError('unknown_identity', `tunnel client asked for identity ${servername}, which has no pod on this node`));
    }
    let ctx = this.contexts.get(id);
    if (!ctx) {
      ctx = this.o.certs.get(id).then((c) =>
        tls.createSecureContext({ cert: c.certChainPem, key: c.keyPem, ca: this.o.certs.trustBundlePem(), minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }),
      );
      ctx.catch(() => this.contexts.delete(id));
      this.contexts.set(id, ctx);
    }
    return ctx;
  }

  private onSession(session: Http2Session): void {
    this.sessions.add(session);
    session.once('close', () => this.sessions.delete(session));
    const socket = session.socket as TLSSocket;
    const ids = spiffeIdsOf(socket.getPeerCertificate());
    const principal = ids[0];
    const served = this.identityForSni((socket as TLSSocket & { servername?: string | false }).servername || '');
    let reason: string | undefined;
    if (!socket.authorized) reason = handshakeReason({ code: socket.authorizationError ?? 'no_client_certificate', message: String(socket.authorizationError ?? '') });
    else if (!principal) reason = 'no_spiffe_id';
    else if (trustDomainOf(principal) !== this.o.state.trustDomain) reason = 'trust_domain';
    if (reason || !principal || !served) {
      reason ??= 'unknown_identity';
      this.o.agentMetrics.tunnelHandshakeFailures.inc({ side: 'server', reason });
      this.o.log.warn('tunnel peer refused', { peer: `${socket.remoteAddress}:${socket.remotePort}`, reason, principal: principal ?? null, tlsError: socket.authorizationError ?? null });
      session.destroy();
      return;
    }
    session.setLocalWindowSize(this.o.connectionWindow);
    session.on('error', (err) => this.o.log.debug('tunnel session error', { error: err }));
    this.peers.set(session, { principal, servedId: served });
  }

  private refuse(stream: ServerHttp2Stream, status: number, reason: string, fields: Record<string, unknown>): void {
    this.o.agentMetrics.refused.inc({ direction: 'inbound', reason });
    this.o.log.warn('inbound stream refused', { reason, status, ...fields });
    if (!stream.destroyed) stream.respond({ ':status': status }, { endStream: true });
  }

  private async onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    stream.on('error', () => {});
    const peer = this.peers.get(stream.session!);
    if (!peer) return void stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    const authority = headers[':authority'] ?? '';
    if (headers[':method'] !== 'CONNECT') return this.refuse(stream, 405, 'not_connect', { authority, method: headers[':method'] });
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(authority);
    const ip = m?.[1];
    const port = Number(m?.[2]);
    const state = this.o.state;
    const w = ip ? state.workloadByIp(ip) : undefined;
    if (!ip || !w || w.node !== state.nodeName) return this.refuse(stream, 421, 'not_local', { authority, principal: peer.principal });
    // The port is the peer's word too: "99999" or 400 digits (Infinity) would reach net.connect, and a
    // connect to port Infinity never settles (found by bench/fuzz: a stream per such CONNECT held a socket).
    if (!Number.isInteger(port) || port < 1 || port > 65535) return this.refuse(stream, 400, 'bad_authority', { authority, principal: peer.principal });
    const dstId = state.identityOf(w);
    if (dstId !== peer.servedId) {
      // The client authenticated us as one workload and asks for another: refuse, or a tunnel opened for
      // one identity could reach every pod on the node.
      return this.refuse(stream, 403, 'identity_mismatch', { authority, served: peer.servedId, destination: dstId, principal: peer.principal });
    }
    const socket = stream.session!.socket;
    const fwd = this.forwardedSource(headers['forwarded'], peer.principal);
    const forwarded = fwd?.ip;
    // What the stream carries (the source proxy says): HTTP is decided here request by request, anything
    // else as one connection on its L4 attributes.
    const announced = headers[PROTOCOL_HEADER];
    const http = announced === 'http1' ? this.o.http1 : announced === 'h2' ? this.o.http2 : undefined;
    const ctx = newConnectionContext({
      side: 'destination',
      protocol: http ? (announced === 'h2' ? 'http2' : 'http1') : 'tcp',
      // The source is known by its certificate (cross node); its address from Forwarded when the peer may speak for it.
      source: sourceFromPeer(peer.principal, forwarded ?? socket?.remoteAddress ?? '', fwd?.workload),
      original: { ip, port },
      service: undefined,
      destination: w,
      destinationPort: port,
    });
    if (!http) {
      const refusal = this.o.pipeline.destinationConnection(ctx);
      if (refusal) return this.refuse(stream, refusal.status, refusalReason(refusal), { authority, principal: peer.principal, policy: refusal.policy ?? null });
    }

    const bag = parseBaggage(headers['baggage']);
    const srcNs = bag['k8s.namespace.name'];
    // Baggage is the peer proxy's word; accept its namespace only when the certificate agrees.
    // The pod itself (its labels name the canonical service) when Forwarded named one of the certificate's pods.
    const src: LabelWorkload | undefined =
      fwd?.workload ??
      (srcNs && peer.principal.includes(`/ns/${srcNs}/`) ? { uid: `${srcNs}/${bag['k8s.workload.name']}`, namespace: srcNs, workloadName: bag['k8s.workload.name'] ?? 'unknown' } : undefined);
    const svc = bag['service.name'] ? `${bag['service.name']}.svc.${state.trustDomain}` : undefined;
    const labels = this.o.resolver.labels('destination', src, w, svc, 'mutual_tls', peer.principal);

    // transparent (when enabled): from the caller's pod address, when the peer may speak for it
    const connect = () => (this.o.podConnect ? this.o.podConnect({ sourceIp: forwarded, ip, port, timeoutMs: this.o.connectTimeoutMs }) : connectTcp(ip, port, this.o.connectTimeoutMs));
    let pod;
    try {
      // Opened before the CONNECT is answered, HTTP too: a pod that refuses fails the stream at the source.
      pod = await connect();
    } catch (err) {
      return this.refuse(stream, 503, 'connect_failed', { authority, error: err });
    }
    if (stream.destroyed) return void pod.destroy();
    stream.respond({ ':status': 200 });
    const route: Route = { kind: 'local', ip, port, workload: w, node: undefined, destinationId: dstId, labels };
    await deliverLocal(this.o, { stream, ctx, route, http, pod, connect, describe: { peer: peer.principal, destination: authority } });
  }

  /**
   * The source pod (its address from the peer proxy's Forwarded header), believed only when that address belongs to a pod
   * whose identity is the one the peer proved with its certificate (a proxy can only speak for its own pods).
   */
  private forwardedSource(v: string | string[] | undefined, principal: string): { ip: string; workload: Workload } | undefined {
    const s = Array.isArray(v) ? v[0] : v;
    const m = s ? /(?:^|[;,\s])for="?\[?([0-9A-Fa-f.:]+)\]?"?/.exec(s) : null;
    const ip = m?.[1];
    if (!ip) return undefined;
    const w = this.o.state.workloadByIp(ip);
    return w && this.o.state.identityOf(w) === principal ? { ip, workload: w } : undefined;
  }

  /** GOAWAY to every tunnel client: streams in flight finish, new ones go elsewhere. */
  drain(): void {
    for (const s of this.sessions) s.close();
    this.o.http1.drain();
    this.o.http2.drain();
  }

  close(): void {
    for (const u of this.unsub) u();
    for (const s of this.sessions) s.destroy();
  }
}

function parseBaggage(v: string | string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const s = Array.isArray(v) ? v.join(',') : v;
  if (!s) return out;
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).split(';')[0]!.trim();
  }
  return out;
}
