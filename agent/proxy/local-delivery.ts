// Delivery to a pod on this node, once the destination side knows who is calling and which pod is asked
// for: the tunnel's CONNECT streams (inbound.ts) and connections from outside the mesh steered to the
// inbound plaintext listener (inbound-plaintext.ts) end here alike. HTTP is decided request by request
// (inbound-http1.ts, inbound-http2.ts); anything else is one connection, already admitted on its L4
// attributes, and re-evaluated live when a policy change denies it.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

import type { IstioMetrics } from '../metrics/istio.js';
import type { ConnectionContext } from '../pipeline/context.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { ConnectionTracker } from './connections.js';
import type { DestinationResolver, Route } from './destination.js';
import type { Logger } from '../../common/log.js';
import type { AgentMetrics } from '../metrics/agent-health.js';
import type { MeshState } from '../state/mesh-state.js';
import type { PodConnector } from './transparent.js';
import type { Delivery } from './inbound-http1.js';
import { relay, type RelayOptions } from './relay.js';

/** Serves one stream or connection that carries HTTP (inbound-http1.ts, inbound-http2.ts). */
export interface TunnelHttp {
  serve(stream: Duplex, delivery: Delivery, pod: Duplex): Promise<void>;
  drain(): void;
}

export interface LocalDeliveryDeps {
  pipeline: Pipeline;
  metrics: IstioMetrics;
  connections: ConnectionTracker;
  relay: RelayOptions;
}

/** What the destination side needs, for tunnel streams (inbound.ts) and steered plaintext (inbound-plaintext.ts). */
export interface DestinationSideOptions extends LocalDeliveryDeps {
  state: MeshState;
  resolver: DestinationResolver;
  agentMetrics: AgentMetrics;
  log: Logger;
  connectTimeoutMs: number;
  /** connects to the local pod (transparent.ts: from the caller's address); default plain TCP from the node */
  podConnect?: PodConnector;
  /** the destination half per request for what carries HTTP/1 and HTTP/2 */
  http1: TunnelHttp;
  http2: TunnelHttp;
}

export interface LocalDelivery {
  /** the caller's side: a tunnel stream or a steered socket */
  stream: Duplex;
  ctx: ConnectionContext;
  /** kind 'local', labelled reporter="destination" */
  route: Route;
  /** the HTTP server for what the stream carries; undefined: opaque TCP */
  http: TunnelHttp | undefined;
  /** the pod connection, already open */
  pod: Socket;
  /** another connection to the pod (an HTTP exchange that needs a fresh one) */
  connect(): Promise<Socket>;
  /** what the connection tracker shows for it */
  describe: Record<string, string>;
}

/** Resolves when the stream and the pod connection are over. */
export async function deliverLocal(d: LocalDeliveryDeps, x: LocalDelivery): Promise<void> {
  if (x.http) {
    const done = d.connections.track('inbound', { ...x.describe, protocol: x.ctx.protocol }, () => x.stream.destroy());
    await x.http.serve(x.stream, { ctx: x.ctx, route: x.route, connect: x.connect }, x.pod);
    done();
    return;
  }
  d.metrics.tcpOpen(x.route.labels);
  const done = d.connections.track('inbound', x.describe, () => x.pod.destroy());
  const unregister = d.pipeline.live.add({ ctx: x.ctx, close: () => x.pod.resetAndDestroy() });
  await relay(x.stream, x.pod, d.relay);
  unregister();
  done();
  d.metrics.tcpClose(x.route.labels, x.pod.bytesWritten, x.pod.bytesRead);
  d.pipeline.finishConnection(x.ctx, x.pod.bytesWritten, x.pod.bytesRead);
}

/** The refused-connections reason for a destination's L4 refusal (403: a policy; else a rate limit). */
export function refusalReason(refusal: { status: number }): 'denied' | 'rate_limited' {
  return refusal.status === 403 ? 'denied' : 'rate_limited';
}
