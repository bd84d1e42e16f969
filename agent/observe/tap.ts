// Tap on the agent (`weft tap`, `weft top`): the taps the controller opened on this node, and the observer
// that offers them each finished request. Cost is bounded both ways:
// - nobody taps: the observer checks one boolean per request (`hub.active`) and returns;
// - someone taps: the tap's filter is checked on fields the request already has; a match takes a token
//   from the tap's rate cap (--max-rps) and only then is an event built (never a body; sensitive header
//   values redacted) into the tap's bounded queue. Requests over the cap or past a full queue are counted,
//   not kept, and the counts travel with the next batch so the operator sees what was left out.
// The fields are the access log's (agent/observe/access-log.ts), taken from the same context at the same
// point of the pipeline (its observers), with the metric labels of the view (reporter source or destination).
import { matchesFilter, safeHeaders, type TapEvent, type TapFilter, type TapSubject } from '../../common/tap.js';
import type { PeerLabels } from '../metrics/istio.js';
import { traceId } from './access-log.js';
import type { RequestContext } from '../pipeline/context.js';
import type { Observer, StageInput } from '../pipeline/stages.js';
import type { MeshState } from '../state/mesh-state.js';

/** events a tap may hold on this agent before it drops (the flush runs every 100 ms) */
export const TAP_QUEUE = 1000;
/** taps open at once on one agent (the controller refuses more first) */
export const MAX_TAPS = 16;

const UNKNOWN = 'unknown';
const known = (v: string | undefined) => (v === undefined || v === UNKNOWN ? undefined : v);

export interface TapBatch {
  id: string;
  events: TapEvent[];
  droppedQueue: number;
  droppedRate: number;
}

class TapSession {
  queue: TapEvent[] = [];
  droppedQueue = 0;
  droppedRate = 0;
  private tokens: number;
  private refilledAt: number;

  constructor(
    readonly id: string,
    readonly filter: TapFilter,
    readonly maxRps: number,
    now: number,
  ) {
    this.tokens = maxRps;
    this.refilledAt = now;
  }

  /** a token from the rate cap (a bucket of maxRps tokens refilled at maxRps per second) */
  take(now: number): boolean {
    this.tokens = Math.min(this.maxRps, this.tokens + ((now - this.refilledAt) * this.maxRps) / 1000);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export class TapHub {
  /** true while at least one tap is open: all a request pays when nobody taps */
  active = false;
  private readonly sessions = new Map<string, TapSession>();

  constructor(
    private readonly now: () => number = () => performance.now(),
    readonly queueSize = TAP_QUEUE,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  start(id: string, filter: TapFilter, maxRps: number): void {
    if (this.sessions.size >= MAX_TAPS && !this.sessions.has(id)) throw new RangeError(`${MAX_TAPS} taps are open on this agent already`);
    this.sessions.set(id, new TapSession(id, filter, maxRps, this.now()));
    this.active = true;
  }

  stop(id: string): void {
    this.sessions.delete(id);
    this.active = this.sessions.size > 0;
  }

  stopAll(): void {
    this.sessions.clear();
    this.active = false;
  }

  /** One finished request: each of its views (source, destination) to every tap whose filter it matches. */
  offer(ctx: RequestContext, state: MeshState): void {
    if (ctx.labels) this.view(ctx, state, ctx.labels, ctx.labels.reporter);
    if (ctx.destinationLabels) this.view(ctx, state, ctx.destinationLabels, 'destination');
    // a local answer before any endpoint was picked (no route, denied, no healthy upstream): this side's view
    if (!ctx.labels && !ctx.destinationLabels) this.view(ctx, state, undefined, ctx.side);
  }

  private view(ctx: RequestContext, state: MeshState, labels: PeerLabels | undefined, reporter: 'source' | 'destination'): void {
    const subject = subjectOf(ctx, labels);
    let event: TapEvent | undefined;
    const now = this.now();
    for (const s of this.sessions.values()) {
      if (!matchesFilter(s.filter, subject)) continue;
      if (!s.take(now)) {
        s.droppedRate++;
        continue;
      }
      if (s.queue.length >= this.queueSize) {
        s.droppedQueue++;
        continue;
      }
      s.queue.push((event ??= tapEvent(state, ctx, labels, reporter)));
    }
  }

  /** What each tap has to send (queued events and drop counts since the last call), and resets them. */
  drain(maxEvents = 500): TapBatch[] {
    const out: TapBatch[] = [];
    for (const s of this.sessions.values()) {
      if (!s.queue.length && !s.droppedQueue && !s.droppedRate) continue;
      const events = s.queue.length <= maxEvents ? s.queue : s.queue.slice(0, maxEvents);
      s.queue = s.queue.length <= maxEvents ? [] : s.queue.slice(maxEvents);
      out.push({ id: s.id, events, droppedQueue: s.droppedQueue, droppedRate: s.droppedRate });
      s.droppedQueue = 0;
      s.droppedRate = 0;
    }
    return out;
  }
}

function subjectOf(ctx: RequestContext, labels: PeerLabels | undefined): TapSubject {
  const src = ctx.connection.source;
  const dst = ctx.destination;
  return {
    srcWorkload: known(labels?.source_workload) ?? src.workload?.workloadName,
    srcNamespace: known(labels?.source_workload_namespace) ?? src.namespace,
    srcPod: src.workload?.name,
    dstWorkload: known(labels?.destination_workload) ?? dst?.workloadName,
    dstNamespace: known(labels?.destination_workload_namespace) ?? dst?.namespace,
    dstPod: dst?.name,
    method: ctx.method,
    path: ctx.path,
    status: ctx.outcome.status,
  };
}

/** The event for one view of a finished request. */
export function tapEvent(state: MeshState, ctx: RequestContext, labels: PeerLabels | undefined, reporter: 'source' | 'destination'): TapEvent {
  const o = ctx.outcome;
  const c = ctx.connection;
  const src = c.source;
  const dst = ctx.destination;
  const svc = c.service?.service;
  return {
    type: 'request',
    time: new Date().toISOString(),
    node: state.nodeName,
    reporter,
    direction: reporter === 'source' ? 'outbound' : 'inbound',
    source: {
      workload: known(labels?.source_workload) ?? src.workload?.workloadName ?? null,
      namespace: known(labels?.source_workload_namespace) ?? src.namespace ?? null,
      pod: src.workload?.name ?? null,
      principal: known(labels?.source_principal) ?? src.principal ?? null,
      addr: src.ip,
    },
    destination: {
      workload: known(labels?.destination_workload) ?? dst?.workloadName ?? null,
      namespace: known(labels?.destination_workload_namespace) ?? dst?.namespace ?? null,
      pod: dst?.name ?? null,
      // a pod outside the mesh has no identity (as destination_principal says)
      principal: dst?.meshed ? state.identityOf(dst) : null,
      service: known(labels?.destination_service) ?? (svc ? `${svc.name}.${svc.namespace}.svc.${state.trustDomain}` : null),
      addr: o.endpoint ?? `${c.original.ip}:${c.original.port}`,
    },
    tls: labels ? labels.connection_security_policy === 'mutual_tls' : src.identity === 'mtls',
    protocol: ctx.protocol,
    method: ctx.method,
    authority: ctx.authority,
    path: ctx.path,
    status: o.status,
    ...(o.grpcStatus !== undefined ? { grpcStatus: o.grpcStatus } : {}),
    latencyMs: Math.round((o.endMs - o.startMs) * 1000) / 1000,
    bytesReceived: o.bytesReceived,
    bytesSent: o.bytesSent,
    responseFlags: [...o.flags],
    route: o.routeName ?? null,
    policy: o.policyName ?? null,
    attempts: o.attempts,
    traceId: ctx.trace?.traceId ?? traceId(ctx),
    headers: safeHeaders(ctx.rawHeaders),
  };
}

/** The pipeline observer: one boolean per request while nobody taps. */
export function tapObserver(hub: TapHub): (input: StageInput) => Observer {
  return (input) => {
    const state = input.state;
    return {
      request(ctx) {
        if (hub.active) hub.offer(ctx, state);
      },
    };
  };
}
