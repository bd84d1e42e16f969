// The inbound plaintext listener (15006 in Istio's numbering; here a socket inside each enrolled pod's
// network namespace, bound to loopback on a free port): connections to a meshed pod that did not come
// through the mesh — from a pod outside the mesh, or from a node without Weft — are handed here by the
// kernel (bpf/inbound_lookup.c, sk_lookup). Nothing was rewritten: the socket's local address is the pod's
// address and port the caller asked for, its peer is the caller. The caller has no identity (no
// certificate, and an address is never taken for one), so the destination's policy decides on what is
// left: source.ip, the port, and per request the HTTP attributes. Then the proxy connects to the pod from
// the caller's address, as it does for the tunnel, and the pod sees its real caller.
import net, { type Socket } from 'node:net';

import type { Workload } from '../../common/mesh.js';
import { newConnectionContext, sourceFromWorkload } from '../pipeline/context.js';
import type { Route } from './destination.js';
import { deliverLocal, refusalReason, type DestinationSideOptions } from './local-delivery.js';
import { plainIp } from './outbound.js';
import { sniff } from './sniff.js';
import { SourceCap } from './source-cap.js';
import { connectTcp } from './upstream.js';

export interface InboundPlaintextOptions extends DestinationSideOptions {
  sniffTimeoutMs: number;
  maxConnectionsPerSource: number;
  /** a meshed pod's connection came here: its capture failed (the agent repairs its own pods' capture) */
  onUncaptured?: (caller: Workload) => void;
}

/** One warning per caller and destination this often at most: a broken capture can mean many connections. */
const UNCAPTURED_LOG_EVERY_MS = 10_000;

export class InboundPlaintext {
  private readonly servers = new Set<net.Server>();
  private readonly perSource: SourceCap;
  private readonly lastWarned = new Map<string, number>();

  constructor(private readonly o: InboundPlaintextOptions) {
    this.perSource = new SourceCap(o.maxConnectionsPerSource);
  }

  /** Serves the listening socket `fd` (made in a pod's namespace by capture); closed by close() or the returned function. */
  listen(fd: number): () => void {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (s) => {
      this.onConnection(s).catch((err: unknown) => {
        this.o.log.error('inbound plaintext connection failed unexpectedly', { error: err });
        s.destroy();
      });
    });
    server.on('error', (err) => this.o.log.warn('inbound plaintext listener error', { error: err }));
    server.listen({ fd });
    this.servers.add(server);
    return () => {
      this.servers.delete(server);
      server.close();
    };
  }

  private refuse(socket: Socket, reason: string, fields: Record<string, unknown>): void {
    this.o.agentMetrics.refused.inc({ direction: 'inbound', reason });
    this.o.log.warn('inbound plaintext connection refused', { reason, ...fields });
    socket.resetAndDestroy();
  }

  private async onConnection(socket: Socket): Promise<void> {
    socket.on('error', () => {});
    const ip = plainIp(socket.localAddress);
    const port = socket.localPort ?? 0;
    const sourceIp = plainIp(socket.remoteAddress);
    const state = this.o.state;
    const w = state.workloadByIp(ip);
    const to = `${ip}:${port}`;
    if (!w || w.node !== state.nodeName) return this.refuse(socket, 'not_local', { destination: to, source: sourceIp });
    const caller = state.workloadByIp(sourceIp);
    if (caller?.meshed && state.isEndpointPort(ip, port)) this.uncaptured(caller, w, to);
    if (!this.perSource.admit(sourceIp, socket)) return this.refuse(socket, 'source_limit', { destination: to, source: sourceIp, limit: this.perSource.limit });
    const r = await sniff(socket, this.o.sniffTimeoutMs);
    if (r.head.length > 0) socket.unshift(r.head);
    this.o.agentMetrics.sniffed.inc({ protocol: r.protocol });
    if (socket.destroyed) return;
    const http = r.protocol === 'http1' ? this.o.http1 : r.protocol === 'http2' ? this.o.http2 : undefined;
    const ctx = newConnectionContext({
      side: 'destination',
      protocol: r.protocol === 'http1' || r.protocol === 'http2' ? r.protocol : 'tcp',
      // no identity: outside the mesh, whatever its address
      source: sourceFromWorkload(undefined, undefined, sourceIp),
      original: { ip, port },
      service: undefined,
      destination: w,
      destinationPort: port,
    });
    if (!http) {
      const refusal = this.o.pipeline.destinationConnection(ctx);
      if (refusal) return this.refuse(socket, refusalReason(refusal), { destination: to, source: sourceIp, policy: refusal.policy ?? null });
    }
    const labels = this.o.resolver.labels('destination', undefined, w, undefined, 'none');
    const connect = () => (this.o.podConnect ? this.o.podConnect({ sourceIp, ip, port, timeoutMs: this.o.connectTimeoutMs }) : connectTcp(ip, port, this.o.connectTimeoutMs));
    let pod: Socket;
    try {
      pod = await connect();
    } catch (err) {
      return this.refuse(socket, 'connect_failed', { destination: to, source: sourceIp, error: err });
    }
    if (socket.destroyed) return void pod.destroy();
    const route: Route = { kind: 'local', ip, port, workload: w, node: undefined, destinationId: state.identityOf(w), labels };
    await deliverLocal(this.o, { stream: socket, ctx, route, http, pod, connect, describe: { peer: sourceIp, destination: to } });
  }

  /**
   * A meshed pod reached a mesh destination without its node proxy: its outbound capture failed. Counted
   * (weft_uncaptured_connections_total), said once in a while, and passed on so the agent of the caller's
   * node repairs it. The connection itself is decided as any plaintext one: it proved no identity.
   */
  private uncaptured(caller: Workload, w: Workload, to: string): void {
    this.o.agentMetrics.uncaptured.inc({ source_workload: caller.workloadName, source_workload_namespace: caller.namespace, destination_workload: w.workloadName, destination_workload_namespace: w.namespace });
    const key = `${caller.uid}|${w.uid}`;
    const now = Date.now();
    if (now - (this.lastWarned.get(key) ?? 0) >= UNCAPTURED_LOG_EVERY_MS) {
      this.lastWarned.set(key, now);
      if (this.lastWarned.size > 10_000) this.lastWarned.clear();
      this.o.log.warn('a meshed pod reached a mesh destination without passing its node proxy: its capture failed', { source: `${caller.namespace}/${caller.name}`, sourceNode: caller.node, destination: to, pod: `${w.namespace}/${w.name}` });
    }
    this.o.onUncaptured?.(caller);
  }

  /** Stop accepting on every pod's listener; open connections carry on. */
  stopAccepting(): void {
    for (const s of this.servers) s.close();
    this.servers.clear();
  }
}
