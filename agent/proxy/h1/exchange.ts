// One HTTP/1 request's exchange for the pipeline (UpstreamExchange) over our codec: the request head is
// forwarded as its original bytes unless a hop-by-hop field or a route's edit forces a rewrite, the body is
// written to the upstream connection as it arrives (in its original framing), and the response is held at
// its head until the pipeline commits it (or retries), then streamed with backpressure both ways.
import type { Duplex } from 'node:stream';
import type { RequestContext } from '../../pipeline/context.js';
import type { UpstreamExchange } from '../../pipeline/pipeline.js';
import type { AttemptResult, ForwardAction, HeaderEdits, LocalResponse, WeightedBackend } from '../../pipeline/stages.js';
import type { Route } from '../destination.js';
import { chosenMirrors, shadowHost } from '../../routing/mirror.js';
import { ReplayBody } from '../../routing/replay-body.js';
import type { RoutedForward } from '../../routing/router.js';
import type { Pipeline } from '../../pipeline/pipeline.js';
import { endToEnd, hasHopByHop, headerValue, serializeHead, startLineOf } from './head.js';
import type { H1Request, H1ServerConn, RequestSink } from './server.js';
import type { H1Upstream, ResponseSink } from './upstream.js';

/** How the exchange gets an upstream connection for a route (pooled per source pod). */
export interface UpstreamSource {
  acquire(ctx: RequestContext, route: Route, fresh: boolean): Promise<{ up: H1Upstream; reused: boolean }>;
  readonly pipeline: Pipeline;
  /** false: a request is sent once and never mirrored (the destination half), so its body is not kept */
  readonly keepsBodies: boolean;
}

const STATUS_TEXT: Record<number, string> = { 200: 'OK', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };

export class CodecExchange implements UpstreamExchange, RequestSink, ResponseSink {
  /** the body kept for retries and mirrors (at most 64 KiB, agent/routing/replay-body.ts), in its original framing */
  private readonly replay: ReplayBody | undefined;
  private wb: WeightedBackend | undefined;
  private up: H1Upstream | undefined;
  private settle: ((r: AttemptResult) => void) | undefined;
  private committed: (() => void) | undefined;
  private pending: Buffer[] | undefined;
  private requestEnded = false;
  private bodyStarted = false;
  private action: ForwardAction | undefined;
  private respHead: { status: number; raw: string[]; head: Buffer } | undefined;
  private finished = false;
  private waitingDrain = false;

  constructor(
    private readonly conn: H1ServerConn,
    private readonly ctx: RequestContext,
    private readonly req: H1Request,
    private readonly source: UpstreamSource,
  ) {
    this.requestEnded = !req.hasBody;
    if (req.hasBody && source.keepsBodies) {
      const cl = headerValue(req.raw, 'content-length');
      this.replay = new ReplayBody(cl === undefined ? undefined : Number(cl));
    }
  }

  /** Bodyless, or the whole body (framing and trailers included, at most 64 KiB) is kept: it can go again. */
  get replayable(): boolean {
    return !this.req.hasBody || (this.replay?.replayable ?? false);
  }

  // ---- request body, from the client (RequestSink) ---------------------------------------------
  body(buf: Buffer): boolean {
    this.ctx.outcome.bytesReceived += buf.length;
    this.ctx.touch();
    this.replay?.add(buf);
    const up = this.up;
    if (up && this.bodyStarted && !up.dead) {
      this.conn.touch();
      if (up.socket.write(buf)) return true;
      up.socket.once('drain', this.resumeClient);
      return false;
    }
    if (this.finished) return true; // answered locally: the rest of the body is read and dropped
    (this.pending ??= []).push(buf);
    // Until an upstream takes it, hold the body without reading more (bounded by one read).
    return false;
  }

  private readonly resumeClient = (): void => this.conn.resumeBody();

  end(): void {
    this.requestEnded = true;
    this.replay?.end();
    const go = this.afterBody;
    this.afterBody = undefined;
    go?.();
  }

  private afterBody: (() => void) | undefined;

  private gone: (() => void) | undefined;
  private unwatch: (() => void) | undefined;

  /** While the request waits for a circuit slot: the client leaving (end of stream or reset) calls `f`. */
  onGone(f: (() => void) | undefined): void {
    this.unwatch?.();
    this.unwatch = undefined;
    this.gone = f;
    if (f) this.unwatch = this.conn.watchClient(this.clientLeft);
  }

  /** The client ended its side while its request waited: gone (as Envoy and nginx take it); the connection is closed. */
  private readonly clientLeft = (): void => {
    this.unwatch = undefined;
    const gone = this.gone;
    this.gone = undefined;
    gone?.();
    this.conn.destroy();
  };

  aborted(): void {
    this.ctx.outcome.flags.push('DC');
    const gone = this.gone;
    this.gone = undefined;
    gone?.();
    const up = this.up;
    this.up = undefined;
    up?.destroy();
    this.settle?.({ status: 0, error: 'reset', sent: true });
    this.committed?.();
  }

  // ---- one attempt (UpstreamExchange) ----------------------------------------------------------
  async send(route: Route, action: ForwardAction, wb: WeightedBackend): Promise<AttemptResult> {
    if (!this.action && (action as RoutedForward).mirrors) this.mirror(action as RoutedForward);
    this.action = action;
    this.wb = wb;
    // A body already streamed once goes again only from the kept copy.
    if (this.bodyStarted && !this.replay?.replayable) return { status: 0, error: 'reset', sent: false };
    const head = this.requestHead(action, wb);
    const isHead = this.req.method === 'HEAD';
    for (let fresh = false; ; fresh = true) {
      let got;
      try {
        got = await this.source.acquire(this.ctx, route, fresh);
      } catch (err) {
        return { status: 0, error: (err as { reason?: string }).reason ?? 'connect_failed', sent: false };
      }
      if (this.finished) {
        got.up.destroy();
        return { status: 0, error: 'reset', sent: false };
      }
      const r = await this.attempt(got.up, head, isHead);
      // A kept-alive connection the server closed as we reused it: try once more on a new one.
      if (r.error === 'reset' && got.reused && !this.respHead && this.replayable && !fresh) continue;
      return r;
    }
  }

  private attempt(up: H1Upstream, head: Buffer, isHead: boolean): Promise<AttemptResult> {
    return new Promise<AttemptResult>((resolve) => {
      this.settle = (r) => {
        this.settle = undefined;
        resolve(r);
      };
      this.up = up;
      this.respHead = undefined;
      up.start(this, head, isHead);
      if (this.req.hasBody && this.bodyStarted) {
        // A retry: the whole body is kept.
        up.socket.write(this.replay!.bytes());
      } else if (this.req.hasBody) {
        this.bodyStarted = true;
        const pending = this.pending;
        this.pending = undefined;
        let ok = true;
        for (const b of pending ?? []) ok = up.socket.write(b);
        if (ok) this.conn.resumeBody();
        else up.socket.once('drain', this.resumeClient);
      }
    });
  }

  private requestHead(action: ForwardAction, wb: WeightedBackend): Buffer {
    const req = this.req;
    const edits = action.requestHeaders || wb.requestHeaders || action.rewrite;
    if (!edits && !hasHopByHop(req.raw)) return req.head;
    let raw = endToEnd(req.raw, false);
    raw = applyEdits(applyEdits(raw, action.requestHeaders), wb.requestHeaders);
    if (action.rewrite?.authority) raw = applyEdits(raw, { set: [['Host', action.rewrite.authority]] });
    const line = action.rewrite?.path ? `${req.method} ${action.rewrite.path} HTTP/1.${req.minor}` : startLineOf(req.head);
    return serializeHead(line, raw);
  }

  /** RequestMirror copies (fire-and-forget, response dropped); bodies only when kept (<= 64 KiB). */
  private mirror(action: RoutedForward): void {
    const targets = chosenMirrors(action.mirrors);
    if (targets.length === 0) return;
    const go = () => {
      const body = this.replay ? (this.replay.replayable ? this.replay.bytes() : null) : undefined;
      const st = this.source.pipeline.stages;
      for (const m of targets) {
        const ep = m.backend && body !== null ? st.traffic.pick(this.ctx, m.backend, []) : undefined;
        if (!m.backend || !ep) {
          m.count(body === null ? 'skipped' : 'failed');
          continue;
        }
        const route = this.source.pipeline.routeTo(this.ctx.connection, ep, m.backend);
        const raw = applyEdits(endToEnd(this.req.raw, false), { set: [['Host', shadowHost(this.ctx.authority)]] });
        const line = action.rewrite?.path ? `${this.req.method} ${action.rewrite.path} HTTP/1.${this.req.minor}` : startLineOf(this.req.head);
        const head = serializeHead(line, raw);
        this.source.acquire(this.ctx, route, false).then(
          ({ up }) => {
            up.start(new MirrorSink(up, (r) => m.count(r)), head, this.req.method === 'HEAD');
            if (body) up.socket.write(body);
          },
          () => m.count('failed'),
        );
      }
    };
    if (!this.replay || this.replay.replayable) go();
    else if (!this.replay.fits) for (const m of targets) m.count('skipped');
    else this.afterBody = () => setImmediate(go);
  }

  // ---- the response, from the upstream (ResponseSink) -------------------------------------------
  informational(head: Buffer): void {
    this.conn.write(head);
  }

  responseHead(status: number, raw: string[], head: Buffer): void {
    this.respHead = { status, raw, head };
    this.settle?.({ status, sent: true });
  }

  responseBody(buf: Buffer): void {
    this.ctx.outcome.bytesSent += buf.length;
    this.ctx.touch();
    this.conn.touch();
    if (!this.conn.write(buf) && !this.waitingDrain) {
      this.waitingDrain = true;
      const up = this.up;
      up?.pause();
      this.conn.socket.once('drain', () => {
        this.waitingDrain = false;
        up?.resume();
      });
    }
  }

  responseEnd(close: boolean): void {
    this.up = undefined;
    this.finish(close);
  }

  upstreamError(reason: string, gotHead: boolean): void {
    this.up = undefined;
    if (!gotHead) return this.settle?.({ status: 0, error: reason, sent: true });
    // Mid-response: the client cannot be told anything but a reset.
    this.ctx.outcome.flags.push('UR');
    this.finished = true;
    this.conn.destroy();
    this.committed?.();
  }

  commit(): Promise<void> {
    const r = this.respHead!;
    return new Promise<void>((resolve) => {
      if (this.finished && !this.up) return resolve();
      this.committed = resolve;
      this.conn.write(this.responseHeadBytes(r));
      this.up?.resumeResponse();
    });
  }

  private responseHeadBytes(r: { raw: string[]; head: Buffer }): Buffer {
    const edits = this.action?.responseHeaders || this.wb?.responseHeaders;
    const close = this.conn.willClose && this.req.minor === 1;
    if (!edits && !close && !hasHopByHop(r.raw)) return r.head;
    let raw = applyEdits(applyEdits(endToEnd(r.raw, false), this.action?.responseHeaders), this.wb?.responseHeaders);
    if (close) raw = [...raw, 'Connection', 'close'];
    return serializeHead(startLineOf(r.head), raw);
  }

  private finish(close: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.conn.done(close);
    const c = this.committed;
    this.committed = undefined;
    c?.();
  }

  discard(): void {
    const up = this.up;
    this.up = undefined;
    this.respHead = undefined;
    up?.destroy();
  }

  abort(): void {
    if (this.settle) {
      const up = this.up;
      this.up = undefined;
      up?.destroy();
      this.settle({ status: 0, error: 'timeout', sent: true });
    } else if (this.committed) {
      this.discard();
      this.finished = true;
      this.conn.destroy();
      const c = this.committed;
      this.committed = undefined;
      c();
    } else {
      this.conn.destroy();
    }
  }

  reply(r: LocalResponse): void {
    if (this.committed || this.finished) {
      this.conn.destroy();
      return;
    }
    const body = Buffer.from(r.body ?? '', 'utf8');
    let s = `HTTP/1.${this.req.minor} ${r.status} ${STATUS_TEXT[r.status] ?? 'Error'}\r\n`;
    for (const [n, v] of r.headers ?? []) s += `${n}: ${v}\r\n`;
    if (body.length > 0 && !(r.headers ?? []).some(([n]) => n.toLowerCase() === 'content-type')) s += 'content-type: text/plain\r\n';
    // The rest of an unread request body would be taken for the next request: close after answering.
    const close = this.conn.willClose || !this.requestEnded;
    if (close) s += 'connection: close\r\n';
    s += `content-length: ${body.length}\r\n\r\n`;
    this.conn.write(body.length > 0 ? Buffer.concat([Buffer.from(s, 'latin1'), body]) : Buffer.from(s, 'latin1'));
    this.pending = undefined;
    this.finish(close);
  }
}

/** A mirrored copy's response: read and dropped; only what became of it is counted. */
class MirrorSink implements ResponseSink {
  constructor(
    private readonly up: H1Upstream,
    private readonly count: (r: 'sent' | 'failed') => void,
  ) {}
  informational(): void {}
  responseHead(): void {
    this.count('sent');
    this.up.resumeResponse();
  }
  responseBody(): void {}
  responseEnd(): void {}
  upstreamError(_reason: string, gotHead: boolean): void {
    if (!gotHead) this.count('failed');
  }
}

/** Applies header edits to a raw list (names matched case-insensitively). */
export function applyEdits(raw: string[], e: HeaderEdits | undefined): string[] {
  if (!e) return raw;
  const drop = new Set<string>();
  for (const n of e.remove ?? []) drop.add(n.toLowerCase());
  for (const [n] of e.set ?? []) drop.add(n.toLowerCase());
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!drop.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  for (const [n, v] of e.set ?? []) out.push(n, v);
  for (const [n, v] of e.add ?? []) out.push(n, v);
  return out;
}

export type { Duplex };
