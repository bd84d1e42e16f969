// The node proxy: outbound (15001) for connections captured from pods on this node, the inbound tunnel
// (15008) for connections from other nodes' proxies. Built from what it depends on (capture lookup,
// certificates, mesh state, policy hook), so tests run two of them in one process on loopback.
import type { ConnectionLookup } from '../../common/capture.js';
import type { CertificateProvider } from '../../common/identity.js';
import type { Logger } from '../../common/log.js';
import type { NodeInfo } from '../../common/mesh.js';
import { PORTS } from '../../common/ports.js';
import type { MeshState } from '../state/mesh-state.js';
import type { AgentMetrics } from '../metrics/agent-health.js';
import type { IstioMetrics } from '../metrics/istio.js';
import { Pipeline } from '../pipeline/pipeline.js';
import type { RequestTracing, StageFactories } from '../pipeline/stages.js';
import { STAGE_FACTORIES } from '../pipeline/wiring.js';
import { ConnectionTracker } from './connections.js';
import { DestinationResolver } from './destination.js';
import { ListenError } from './errors.js';
import { Http1Proxy } from './http1.js';
import { Http2Proxy } from './http2.js';
import { InboundTunnel } from './inbound.js';
import { InboundPlaintext } from './inbound-plaintext.js';
import { InboundHttp1 } from './inbound-http1.js';
import { InboundHttp2 } from './inbound-http2.js';
import { Outbound } from './outbound.js';
import { TunnelPool, type TunnelAddress } from './pool.js';
import type { KernelSplicer, RelayOptions } from './relay.js';
import { Upstreams } from './upstream.js';
import type { PodConnector } from './transparent.js';

export interface ListenAddress {
  host: string;
  port: number;
}

export interface ProxyLimits {
  sniffTimeoutMs: number;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxHeaderSize: number;
  maxConnections: number;
  /** captured connections one source pod may hold open at once (one pod must not starve the others) */
  maxConnectionsPerSource: number;
  maxConcurrentStreams: number;
  maxSocketsPerEndpoint: number;
  streamWindow: number;
  connectionWindow: number;
  /** largest HTTP/2 frame the tunnel accepts (SETTINGS_MAX_FRAME_SIZE); the peer sends DATA frames up to it */
  maxFrameSize: number;
  drainTimeoutMs: number;
}

export const DEFAULT_LIMITS: ProxyLimits = {
  sniffTimeoutMs: 100,
  idleTimeoutMs: 60 * 60_000,
  connectTimeoutMs: 10_000,
  keepAliveTimeoutMs: 60_000,
  maxHeaderSize: 16 * 1024,
  maxConnections: 50_000,
  maxConnectionsPerSource: 10_000,
  maxConcurrentStreams: 1000,
  maxSocketsPerEndpoint: 1024,
  streamWindow: 4 * 1024 * 1024,
  connectionWindow: 16 * 1024 * 1024,
  // 128 KB DATA frames: fewer frames per MB for bulk streams, while a frame still blocks the other streams
  // of its tunnel connection for under a millisecond.
  maxFrameSize: 128 * 1024,
  drainTimeoutMs: 20_000,
};

export interface NodeProxyOptions {
  state: MeshState;
  lookup: ConnectionLookup;
  certs: CertificateProvider;
  log: Logger;
  metrics: IstioMetrics;
  agentMetrics: AgentMetrics;
  /** the pipeline's stage factories (default: agent/pipeline/wiring.ts); tests replace some */
  stages?: Partial<StageFactories>;
  /** trace context and spans per hop (agent/observe/tracing.ts); absent: tracing off */
  tracing?: RequestTracing;
  /** connects to local pods; default plain TCP from the node (transparent.ts: from the caller's address) */
  podConnect?: PodConnector;
  splicer?: KernelSplicer;
  outbound: ListenAddress;
  inbound: ListenAddress;
  /** where a peer node's tunnel listener is; default its node IP on 15008 */
  tunnelAddress?: (node: NodeInfo) => TunnelAddress;
  limits?: Partial<ProxyLimits>;
  /** a meshed pod's connection reached a local pod without its node proxy (inbound-plaintext.ts) */
  onUncaptured?: (caller: import('../../common/mesh.js').Workload) => void;
  /** binds a listener (default: plain net.Server.listen); the agent passes SO_REUSEPORT (lifecycle/) */
  listen?: (server: import('node:net').Server, what: string, a: ListenAddress) => Promise<ListenAddress>;
}

export class NodeProxy {
  readonly connections: ConnectionTracker;
  readonly limits: ProxyLimits;
  readonly pipeline: Pipeline;
  private readonly pool: TunnelPool;
  private readonly outbound: Outbound;
  private readonly inbound: InboundTunnel;
  private readonly plaintext: InboundPlaintext;
  private readonly http1: Http1Proxy;
  private readonly http2: Http2Proxy;

  constructor(private readonly o: NodeProxyOptions) {
    const limits = (this.limits = { ...DEFAULT_LIMITS, ...o.limits });
    const log = o.log;
    this.connections = new ConnectionTracker(o.agentMetrics);
    const tunnelAddress = o.tunnelAddress ?? ((n: NodeInfo) => ({ host: n.ip, port: PORTS.inboundTunnel }));
    const relayOpts: RelayOptions = { idleTimeoutMs: limits.idleTimeoutMs, splicer: o.splicer };
    const resolver = new DestinationResolver(o.state);
    this.pipeline = new Pipeline({ state: o.state, resolver, factories: { ...STAGE_FACTORIES, ...o.stages }, metrics: o.metrics, agentMetrics: o.agentMetrics, log: log.child('pipeline'), ...(o.tracing ? { tracing: o.tracing } : {}) });
    this.pool = new TunnelPool({
      certs: o.certs,
      log: log.child('tunnel'),
      metrics: o.agentMetrics,
      idleTimeoutMs: limits.keepAliveTimeoutMs,
      connectTimeoutMs: limits.connectTimeoutMs,
      streamWindow: limits.streamWindow,
      connectionWindow: limits.connectionWindow,
      maxFrameSize: limits.maxFrameSize,
    });
    const upstreams = new Upstreams({ pool: this.pool, log, metrics: o.agentMetrics, connectTimeoutMs: limits.connectTimeoutMs, tunnelAddress, ...(o.podConnect ? { podConnect: o.podConnect } : {}) });
    const common = { pipeline: this.pipeline, upstreams, metrics: o.metrics, agentMetrics: o.agentMetrics, connections: this.connections };
    this.http1 = new Http1Proxy({ ...common, resolver, log: log.child('http1'), relay: relayOpts, maxHeaderSize: limits.maxHeaderSize, keepAliveTimeoutMs: limits.keepAliveTimeoutMs, connectTimeoutMs: limits.connectTimeoutMs, maxSocketsPerEndpoint: limits.maxSocketsPerEndpoint });
    this.http2 = new Http2Proxy({
      ...common,
      log: log.child('http2'),
      maxHeaderSize: limits.maxHeaderSize,
      streamWindow: limits.streamWindow,
      connectionWindow: limits.connectionWindow,
      maxConcurrentStreams: limits.maxConcurrentStreams,
      idleTimeoutMs: limits.idleTimeoutMs,
    });
    this.outbound = new Outbound({
      state: o.state,
      lookup: o.lookup,
      pipeline: this.pipeline,
      upstreams,
      metrics: o.metrics,
      agentMetrics: o.agentMetrics,
      connections: this.connections,
      http1: this.http1,
      http2: this.http2,
      log: log.child('outbound'),
      relay: relayOpts,
      sniffTimeoutMs: limits.sniffTimeoutMs,
      maxConnections: limits.maxConnections,
      maxConnectionsPerSource: limits.maxConnectionsPerSource,
    });
    // The destination half per request, for tunnel streams and steered plaintext connections alike
    const inboundHttp1 = new InboundHttp1({
      pipeline: this.pipeline,
      agentMetrics: o.agentMetrics,
      log: log.child('inbound-http1'),
      relay: relayOpts,
      // The source pools these streams and closes idle ones after keepAliveTimeoutMs: this side waits
      // longer, so a stream is never closed here just as the source reuses it.
      server: { maxHeaderSize: limits.maxHeaderSize, headersTimeoutMs: 60_000, keepAliveTimeoutMs: 2 * limits.keepAliveTimeoutMs, idleTimeoutMs: limits.idleTimeoutMs },
    });
    const inboundHttp2 = new InboundHttp2({
      pipeline: this.pipeline,
      log: log.child('inbound-http2'),
      maxHeaderSize: limits.maxHeaderSize,
      streamWindow: limits.streamWindow,
      connectionWindow: limits.connectionWindow,
      maxConcurrentStreams: limits.maxConcurrentStreams,
      idleTimeoutMs: limits.idleTimeoutMs,
    });
    const destinationSide = {
      state: o.state,
      pipeline: this.pipeline,
      resolver,
      metrics: o.metrics,
      agentMetrics: o.agentMetrics,
      connections: this.connections,
      relay: relayOpts,
      connectTimeoutMs: limits.connectTimeoutMs,
      ...(o.podConnect ? { podConnect: o.podConnect } : {}),
      http1: inboundHttp1,
      http2: inboundHttp2,
    };
    this.inbound = new InboundTunnel({
      ...destinationSide,
      certs: o.certs,
      log: log.child('inbound'),
      streamWindow: limits.streamWindow,
      connectionWindow: limits.connectionWindow,
      maxFrameSize: limits.maxFrameSize,
      maxConcurrentStreams: limits.maxConcurrentStreams,
    });
    this.plaintext = new InboundPlaintext({ ...destinationSide, log: log.child('inbound-plaintext'), sniffTimeoutMs: limits.sniffTimeoutMs, maxConnectionsPerSource: limits.maxConnectionsPerSource, ...(o.onUncaptured ? { onUncaptured: o.onUncaptured } : {}) });
  }

  /**
   * Serves a listening socket made in a pod's network namespace (capture's inbound steering): connections
   * to the pod from outside the mesh. Returns what stops serving it.
   */
  listenPlaintext(fd: number): () => void {
    return this.plaintext.listen(fd);
  }

  /** Binds both listeners; returns the bound addresses (port 0 in tests picks a free one). */
  async start(): Promise<{ outbound: ListenAddress; inbound: ListenAddress }> {
    const listen = this.o.listen ?? ((server: import('node:net').Server, what: string, a: ListenAddress) =>
      new Promise<ListenAddress>((resolve, reject) => {
        server.once('error', (err) => reject(new ListenError(what, `${a.host}:${a.port}`, err)));
        server.listen({ host: a.host, port: a.port, backlog: 4096 }, () => {
          const addr = server.address() as import('node:net').AddressInfo;
          resolve({ host: addr.address, port: addr.port });
        });
      }));
    const outbound = await listen(this.outbound.server, 'outbound', this.o.outbound);
    const inbound = await listen(this.inbound.server, 'inbound tunnel', this.o.inbound);
    this.o.log.info('proxy listening', { outbound: `${outbound.host}:${outbound.port}`, inbound: `${inbound.host}:${inbound.port}` });
    return { outbound, inbound };
  }

  /**
   * Graceful drain (SIGTERM): stop accepting, tell HTTP clients to go away (Connection: close, GOAWAY),
   * let open connections finish for up to drainTimeoutMs, then close what is left.
   */
  async drain(timeoutMs = this.limits.drainTimeoutMs): Promise<void> {
    this.stopAccepting();
    this.beginDrain();
    await this.finishDrain(timeoutMs);
  }

  /** The two listening servers (outbound, inbound tunnel), for the lifecycle's handover. */
  servers(): import('node:net').Server[] {
    return [this.outbound.server, this.inbound.server];
  }

  /** Closes both listeners; open connections carry on. */
  stopAccepting(): void {
    this.outbound.server.close();
    this.inbound.server.close();
    this.plaintext.stopAccepting();
  }

  /** Tells HTTP clients to go away (Connection: close, GOAWAY) while still serving what they send. */
  beginDrain(): void {
    this.http1.drain();
    this.http2.drain();
    this.inbound.drain();
  }

  /** Waits for open connections to end, at most `timeoutMs`, then closes everything. */
  async finishDrain(timeoutMs = this.limits.drainTimeoutMs): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.connections.idle(), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    this.close();
  }

  /** Closes everything now. */
  close(): void {
    this.outbound.server.close();
    this.inbound.server.close();
    this.plaintext.stopAccepting();
    this.http1.close();
    this.http2.close();
    this.pool.close();
    this.inbound.close();
    this.pipeline.close();
    const open = this.connections.size;
    if (open > 0) this.o.log.info('proxy closing connections still open', { open });
    this.connections.destroyAll();
  }
}
