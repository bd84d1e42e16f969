// The controller's gRPC service on 15012 (TLS, certificate from the mesh CA): node authentication on
// every call, CSR signing, the config stream and agent reports. It owns no state of its own: the store,
// the publisher, the CA and the agent registry are passed in by the composition root.
import * as grpc from '@grpc/grpc-js';

import { errorMessage, isWeftError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { silentLogger } from '../../common/log.js';
import { loadMeshProto, NODE_METADATA } from '../../proto/load.js';
import type { MeshControllerHandlers } from '../../proto/generated/weft/v1/MeshController.js';
import type { AgentRegistry } from '../agents/registry.js';
import type { CertificateAuthority } from '../ca/authority.js';
import type { CsrAuthorizer } from '../ca/csr-authorizer.js';
import { CSR_REFUSAL, CsrRefusedError } from '../ca/errors.js';
import type { ConfigPublisher } from '../translate/publisher.js';
import type { TapBroker } from '../tap/broker.js';
import { ConfigSession, type ConfigAnswer } from './config-session.js';
import { UpdateEncoder } from './update-encoder.js';
import { NodeAuthError, type NodeAuthenticator } from './node-auth.js';
import { ReloadableServerCredentials } from './reloadable-credentials.js';

export const CONTROLLER_VERSION = 'weft-controller/0.1';
const NODE_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export interface ControllerServerDeps {
  ca: CertificateAuthority;
  authorizer: CsrAuthorizer;
  publisher: ConfigPublisher;
  registry: AgentRegistry;
  authenticator: NodeAuthenticator;
  logger?: Logger;
  /** seconds between agent reports the controller asks for; default 5 */
  reportIntervalSeconds?: number;
  /** told of every agent's ACK or NACK, timed (telemetry/config-timing.ts) */
  onAnswer?: (a: ConfigAnswer) => void;
  /** operators' taps (controller/tap/broker.ts); without one, agents' tap streams are refused */
  tap?: TapBroker;
}

export interface ServingCert {
  certChainPem: string;
  keyPem: string;
}

type ServiceError = Partial<grpc.StatusObject> & { code: grpc.status; details: string };

function weftStatus(code: grpc.status, e: unknown): ServiceError {
  const md = new grpc.Metadata();
  if (isWeftError(e)) md.set(NODE_METADATA.errorCode, e.code);
  return { code, details: errorMessage(e), metadata: md };
}

export class ControllerGrpcServer {
  private readonly server = new grpc.Server({ 'grpc.keepalive_time_ms': 20_000, 'grpc.keepalive_timeout_ms': 10_000, 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  private readonly sessions = new Set<ConfigSession>();
  private readonly encoder: UpdateEncoder;
  private readonly log: Logger;
  private readonly unsubscribers: (() => void)[] = [];
  private boundPort = 0;
  private credentials: ReloadableServerCredentials | undefined;

  constructor(private readonly deps: ControllerServerDeps) {
    this.log = deps.logger ?? silentLogger;
    const proto = loadMeshProto();
    this.encoder = new UpdateEncoder(deps.publisher);
    // config updates are encoded once and written as bytes (update-encoder.ts): the stream's serializer
    // passes Buffers through and encodes anything else as before
    const def = proto.weft.v1.MeshController.service;
    const streamConfig = def.StreamConfig;
    const service = {
      ...def,
      StreamConfig: { ...streamConfig, responseSerialize: (v: unknown) => (Buffer.isBuffer(v) ? v : streamConfig.responseSerialize(v as never)) },
    };
    this.server.addService(service, this.handlers());
    this.unsubscribers.push(deps.publisher.onConfig(() => this.notifySessions()));
    this.unsubscribers.push(deps.ca.onChange(() => this.notifySessions()));
  }

  /** Listens on host:port (port 0 picks one); returns the bound port. */
  async listen(host: string, port: number, cert: ServingCert): Promise<number> {
    const creds = new ReloadableServerCredentials(cert);
    this.credentials = creds;
    const addr = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    this.boundPort = await new Promise<number>((resolve, reject) => this.server.bindAsync(addr, creds, (err, p) => (err ? reject(err) : resolve(p))));
    this.log.info('gRPC listening', { address: addr, port: this.boundPort });
    return this.boundPort;
  }

  /** replace the serving certificate for new connections (after a root rotation) */
  reloadCertificate(cert: ServingCert): void {
    this.credentials?.reload(cert);
  }

  port(): number {
    return this.boundPort;
  }

  /** connected config streams by node */
  connectedNodes(): string[] {
    return [...this.sessions].map((s) => s.node).sort();
  }

  async close(): Promise<void> {
    for (const u of this.unsubscribers) u();
    for (const s of this.sessions) s.close();
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 1000);
      this.server.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
    this.server.forceShutdown();
  }

  private notifySessions(): void {
    for (const s of this.sessions) s.changed();
  }

  private async authenticate(md: grpc.Metadata): Promise<string> {
    const node = String(md.get(NODE_METADATA.node)[0] ?? '');
    const auth = String(md.get(NODE_METADATA.authorization)[0] ?? '');
    if (!node || !NODE_NAME.test(node)) throw new NodeAuthError(`missing or invalid ${NODE_METADATA.node} metadata ("${node}"); the agent must send its node name`);
    const m = /^Bearer (.+)$/.exec(auth);
    if (!m) throw new NodeAuthError(`node "${node}" sent no "authorization: Bearer <token>" metadata`);
    await this.deps.authenticator.authenticate(node, m[1]!);
    return node;
  }

  private handlers(): MeshControllerHandlers {
    const deps = this.deps;
    return {
      Connect: (call, cb) => {
        this.authenticate(call.metadata).then(
          (node) => {
            this.log.info('agent connected', { node, peer: call.getPeer(), agentVersion: call.request.agentVersion });
            cb(null, { trustDomain: deps.ca.trustDomain, trustBundlePem: deps.ca.trustBundlePem(), controllerVersion: CONTROLLER_VERSION });
          },
          (e: unknown) => cb(this.authFailure(e, call.getPeer())),
        );
      },
      SignCertificate: (call, cb) => {
        this.authenticate(call.metadata)
          .then(async (node) => {
            try {
              const signed = await deps.authorizer.sign(node, call.request.csrPem);
              cb(null, {
                spiffeId: signed.spiffeId,
                certChainPem: signed.certChainPem,
                trustBundlePem: signed.trustBundlePem,
                notBeforeMs: signed.notBefore.getTime(),
                notAfterMs: signed.notAfter.getTime(),
              });
            } catch (e) {
              if (e instanceof CsrRefusedError) cb(weftStatus(e.code === CSR_REFUSAL.notOnNode ? grpc.status.PERMISSION_DENIED : grpc.status.INVALID_ARGUMENT, e));
              else {
                this.log.error('signing failed', { node, err: e });
                cb(weftStatus(grpc.status.INTERNAL, e));
              }
            }
          }, (e: unknown) => cb(this.authFailure(e, call.getPeer())));
      },
      Report: (call, cb) => {
        this.authenticate(call.metadata).then(
          (node) => {
            const r = call.request;
            deps.registry.report({
              node,
              configVersion: r.configVersion,
              lastSentVersion: r.lastReceivedVersion,
              ack: r.ack === 'NACK' || r.ack === 'PENDING' ? r.ack : 'ACK',
              ...(r.nackReason ? { nackReason: r.nackReason } : {}),
              healthy: r.healthy,
              ...(r.certExpiry ? { certExpiry: r.certExpiry } : {}),
              counters: {
                requests: r.requests,
                requestErrors: r.requestErrors,
                connectionsOpened: r.connectionsOpened,
                connectionsActive: r.connectionsActive,
                redirects: r.redirects,
                cpuPercent: r.cpuPercent,
                memoryRssBytes: r.memoryRssBytes,
              },
              reportedAt: new Date().toISOString(),
            });
            cb(null, { intervalSeconds: deps.reportIntervalSeconds ?? 5 });
          },
          (e: unknown) => cb(this.authFailure(e, call.getPeer())),
        );
      },
      Tap: (call) => {
        const broker = deps.tap;
        if (!broker) {
          call.destroy(Object.assign(new Error('this controller serves no taps'), { code: grpc.status.UNIMPLEMENTED, details: 'this controller serves no taps' }));
          return;
        }
        let detach: (() => void) | undefined;
        let node: string | undefined;
        const end = () => {
          detach?.();
          detach = undefined;
        };
        call.on('data', (b) => {
          if (node) broker.batch(node, b);
        });
        call.on('end', () => {
          end();
          call.end();
        });
        call.on('error', end);
        call.on('cancelled', end);
        call.on('close', end);
        this.authenticate(call.metadata).then(
          (n) => {
            if (call.cancelled || call.destroyed) return;
            node = n;
            detach = broker.attach({ node: n, send: (c) => void call.write(c) });
          },
          (e: unknown) => call.destroy(Object.assign(new Error(errorMessage(e)), this.authFailure(e, call.getPeer()))),
        );
      },
      StreamConfig: (call) => {
        let session: ConfigSession | undefined;
        const early: Parameters<ConfigSession['onRequest']>[0][] = [];
        call.on('data', (req) => (session ? session.onRequest(req) : early.push(req)));
        const end = () => {
          if (!session) return;
          session.close();
          this.sessions.delete(session);
          if (![...this.sessions].some((s) => s.node === session!.node)) deps.registry.disconnected(session.node);
          this.log.info('agent stream closed', { node: session.node });
          session = undefined;
        };
        call.on('end', () => {
          end();
          call.end();
        });
        call.on('error', end);
        call.on('cancelled', end);
        this.authenticate(call.metadata).then(
          (node) => {
            session = new ConfigSession(
              node,
              call,
              {
                encoder: this.encoder,
                version: () => deps.publisher.version,
                pendingAgeMs: (v) => deps.publisher.pendingAgeMs(v),
                ...(deps.onAnswer ? { answered: deps.onAnswer } : {}),
                raiseAbove: (v) => deps.publisher.raiseAbove(v),
                trustBundlePem: () => deps.ca.trustBundlePem(),
              },
              deps.registry,
              this.log,
            );
            this.sessions.add(session);
            deps.registry.connected(node, call.getPeer());
            for (const r of early.splice(0)) session.onRequest(r);
          },
          (e: unknown) => call.destroy(Object.assign(new Error(errorMessage(e)), this.authFailure(e, call.getPeer()))),
        );
      },
    };
  }

  private authFailure(e: unknown, peer: string): ServiceError {
    if (e instanceof NodeAuthError) {
      this.log.warn('refused agent', { peer, reason: e.message });
      return weftStatus(grpc.status.UNAUTHENTICATED, e);
    }
    this.log.error('authentication error', { peer, err: e });
    return weftStatus(grpc.status.UNAVAILABLE, e);
  }
}
