// The agent's channel to the controller (gRPC over TLS on 15012). It verifies the controller's certificate
// against the mesh trust bundle and its SPIFFE ID (not a hostname: agents reach the controller by Service
// name, node IP or loopback alike), and attaches the node's credentials to every call. The token is read
// through a callback on each call, because a projected ServiceAccount token is rotated on disk by kubelet.
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';

import { WeftError } from '../../common/errors.js';
import { loadMeshProto, NODE_METADATA } from '../../proto/load.js';
import type { AgentReport } from '../../proto/generated/weft/v1/AgentReport.js';
import type { ConfigRequest } from '../../proto/generated/weft/v1/ConfigRequest.js';
import type { ConfigUpdate__Output } from '../../proto/generated/weft/v1/ConfigUpdate.js';
import type { ConnectResponse__Output } from '../../proto/generated/weft/v1/ConnectResponse.js';
import type { MeshControllerClient } from '../../proto/generated/weft/v1/MeshController.js';
import type { ReportResponse__Output } from '../../proto/generated/weft/v1/ReportResponse.js';
import type { TapBatch } from '../../proto/generated/weft/v1/TapBatch.js';
import type { TapControl__Output } from '../../proto/generated/weft/v1/TapControl.js';

export const DEFAULT_CONTROLLER_IDENTITY = (trustDomain: string) => `spiffe://${trustDomain}/ns/weft-system/sa/weft-controller`;

/** A call to the controller failed; `weftCode` is the controller's WEFT_ERR_* code when it sent one. */
export class ControllerCallError extends WeftError {
  readonly grpcCode: number;
  readonly weftCode: string | undefined;
  constructor(method: string, err: grpc.ServiceError) {
    const weftCode = err.metadata?.get(NODE_METADATA.errorCode)[0]?.toString();
    super('WEFT_ERR_CONTROLLER_CALL', `${method} to the controller failed: ${err.details || err.message}`, { details: { grpcCode: err.code, ...(weftCode ? { weftCode } : {}) } });
    this.grpcCode = err.code;
    this.weftCode = weftCode;
  }
}

export interface ControllerConnectionOptions {
  /**
   * host:port of the controller's gRPC endpoint (on Kubernetes the Service, which spreads agents over the
   * replicas), or IP:PORT,IP:PORT,... for replicas without a Service in front (the sandbox): the channel then
   * balances calls over the replicas that answer and leaves out one that died, so a stream broken by a
   * dying replica is re-opened on a live one at the next retry
   */
  address: string;
  node: string;
  /** returns the current bearer token (bootstrap token, or the projected SA token re-read from disk) */
  token: () => string;
  /** PEM of the CA(s) the controller's certificate chains to */
  trustBundlePem: string;
  /** SPIFFE ID the controller's certificate must carry; default spiffe://<td>/ns/weft-system/sa/weft-controller */
  controllerIdentity: string;
}

/** the gRPC target for one address, or the ipv4:/ipv6: list form for several replicas */
export function channelTarget(address: string): string {
  const list = address.split(',');
  if (list.length === 1) return address;
  return `${list.every((a) => !a.startsWith('[')) ? 'ipv4' : 'ipv6'}:${list.join(',')}`;
}

export function tokenFromFile(path: string): () => string {
  return () => readFileSync(path, 'utf8').trim();
}

export interface SignedCert {
  spiffeId: string;
  certChainPem: string;
  trustBundlePem: string;
  notBefore: Date;
  notAfter: Date;
}

export class ControllerConnection {
  readonly client: MeshControllerClient;

  constructor(private readonly opts: ControllerConnectionOptions) {
    const proto = loadMeshProto();
    const creds = grpc.credentials.createSsl(Buffer.from(opts.trustBundlePem), null, null, {
      checkServerIdentity: (host: string, cert: PeerCertificate) => {
        const sans = (cert.subjectaltname ?? '').split(', ');
        if (sans.includes(`URI:${opts.controllerIdentity}`)) return undefined;
        const hostErr = checkServerIdentity(host, cert);
        return hostErr
          ? new Error(`the controller at ${opts.address} presented a certificate without ${opts.controllerIdentity} (SANs: ${cert.subjectaltname ?? 'none'})`)
          : undefined;
      },
    });
    this.client = new proto.weft.v1.MeshController(channelTarget(opts.address), creds, {
      ...(opts.address.includes(',') ? { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) } : {}),
      'grpc.keepalive_time_ms': 20_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.initial_reconnect_backoff_ms': 500,
      'grpc.max_reconnect_backoff_ms': 5_000,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    }) as unknown as MeshControllerClient;
  }

  get node(): string {
    return this.opts.node;
  }

  metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set(NODE_METADATA.node, this.opts.node);
    md.set(NODE_METADATA.authorization, `Bearer ${this.opts.token()}`);
    return md;
  }

  connect(agentVersion: string, timeoutMs = 10_000): Promise<ConnectResponse__Output> {
    return new Promise((resolve, reject) =>
      this.client.Connect({ agentVersion }, this.metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(new ControllerCallError('Connect', err)) : resolve(res!))),
    );
  }

  signCsr(csrPem: string, timeoutMs = 10_000): Promise<SignedCert> {
    return new Promise((resolve, reject) =>
      this.client.SignCertificate({ csrPem }, this.metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) return reject(new ControllerCallError('SignCertificate', err));
        resolve({ spiffeId: res!.spiffeId, certChainPem: res!.certChainPem, trustBundlePem: res!.trustBundlePem, notBefore: new Date(res!.notBeforeMs), notAfter: new Date(res!.notAfterMs) });
      }),
    );
  }

  report(r: AgentReport, timeoutMs = 5_000): Promise<ReportResponse__Output> {
    return new Promise((resolve, reject) =>
      this.client.Report(r, this.metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(new ControllerCallError('Report', err)) : resolve(res!))),
    );
  }

  streamConfig(): grpc.ClientDuplexStream<ConfigRequest, ConfigUpdate__Output> {
    return this.client.StreamConfig(this.metadata());
  }

  /** the tap stream (agent/observe/tap-stream.ts): the controller's tap requests down, tapped requests up */
  tapStream(): grpc.ClientDuplexStream<TapBatch, TapControl__Output> {
    return this.client.Tap(this.metadata());
  }

  close(): void {
    this.client.close();
  }
}
