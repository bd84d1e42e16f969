// The client side of our HTTP/1 codec: one object per upstream connection (a TCP socket to a pod, or a
// CONNECT stream through the tunnel), its llhttp response parser, and LIFO pools of idle connections keyed
// by (source pod, upstream): a connection opened for one source pod never carries another's requests.
import type { Duplex } from 'node:stream';
import { HeadCollector } from './head.js';
import { Parser, TYPE_RESPONSE, type ParserHandler } from './llhttp.js';

/** What an upstream connection reports to the exchange using it. */
export interface ResponseSink {
  /** a 1xx (other than 101) head, to be forwarded at once */
  informational(head: Buffer): void;
  /** the final response head; the connection stops reading until resumeResponse() */
  responseHead(status: number, raw: string[], head: Buffer): void;
  /** response body bytes in their original framing */
  responseBody(buf: Buffer): void;
  /** the response is complete; `close`: the connection cannot be reused (the body ended with it, or it said so) */
  responseEnd(close: boolean): void;
  /** the connection failed: before a response head (`gotHead` false) or in the middle of one */
  upstreamError(reason: string, gotHead: boolean): void;
}

export class H1Upstream implements ParserHandler {
  private readonly parser: Parser;
  private readonly headers = new HeadCollector();
  private sink: ResponseSink | undefined;
  private status = 0;
  private keepAlive = false;
  private noBody = false;
  private gotHead = false;
  private held = false;
  private chunk: Buffer | undefined;
  private from = 0;
  private headParts: Buffer[] = [];
  dead = false;
  /** requests sent on this connection */
  uses = 0;
  idleTimer: NodeJS.Timeout | undefined;
  /** TrafficPolicy connectionPool: requests on this connection before it is closed (0: no limit), idle timeout */
  maxUses = 0;
  idleTimeoutMs: number | undefined;

  constructor(
    readonly socket: Duplex,
    readonly key: string,
    private readonly onIdleClose: (u: H1Upstream) => void,
  ) {
    this.parser = new Parser(TYPE_RESPONSE, this);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('error', NOOP);
  }

  onMessageBegin(): void {
    this.headers.reset();
  }
  onUrl(): void {}
  onHeaderField(buf: Buffer, at: number, len: number): void {
    this.headers.field(buf, at, len);
  }
  onHeaderValue(buf: Buffer, at: number, len: number): void {
    this.headers.value(buf, at, len);
  }
  onHeadersComplete(status: number, _upgrade: boolean, keepAlive: boolean): boolean {
    this.headers.done = true;
    this.status = status;
    this.keepAlive = keepAlive;
    // A response to HEAD has no body, whatever its Content-Length says.
    return this.noBody && status >= 200;
  }

  /** Sends one request head; the body (if any) is written by the exchange as it arrives. */
  start(sink: ResponseSink, head: Buffer, isHead: boolean): boolean {
    clearTimeout(this.idleTimer);
    this.sink = sink;
    this.noBody = isHead;
    this.gotHead = false;
    this.uses++;
    this.socket.resume();
    return this.socket.write(head);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (!this.sink) {
      // Bytes on an idle connection: the server is confused (or closing); never reuse it.
      this.destroy();
      return;
    }
    this.parser.feed(chunk);
    this.chunk = chunk;
    this.from = 0;
    this.run();
  };

  private run(): void {
    const p = this.parser;
    const chunk = this.chunk!;
    for (;;) {
      if (this.held || !this.sink) return;
      const step = p.step();
      const sink = this.sink;
      switch (step) {
        case 'more':
          if (this.from < chunk.length) {
            if (this.gotHead) sink.responseBody(chunk.subarray(this.from));
            else this.headParts.push(chunk.subarray(this.from));
          }
          this.from = chunk.length;
          return;
        case 'head': {
          const head = this.takeHead(chunk, p.pos);
          if (this.status < 200 && this.status !== 101) {
            sink.informational(head);
            break;
          }
          this.gotHead = true;
          this.held = true;
          this.socket.pause();
          sink.responseHead(this.status, this.headers.raw, head);
          return;
        }
        case 'complete': {
          if (!this.gotHead) {
            if (this.status < 200) break; // end of a 1xx message
            // A body-less response (HEAD): head and end together.
            const head = this.takeHead(chunk, p.pos);
            this.gotHead = true;
            this.held = true;
            this.socket.pause();
            this.endPending = true;
            sink.responseHead(this.status, this.headers.raw, head);
            return;
          }
          if (this.from < p.pos) sink.responseBody(chunk.subarray(this.from, p.pos));
          this.from = p.pos;
          this.finishResponse(p.remaining > 0);
          return;
        }
        case 'upgrade':
        case 'error':
          this.fail('bad_response');
          return;
      }
    }
  }

  private endPending = false;

  private takeHead(chunk: Buffer, pos: number): Buffer {
    const part = chunk.subarray(this.from, pos);
    this.from = pos;
    const head = this.headParts.length === 0 ? part : Buffer.concat([...this.headParts, part]);
    this.headParts = [];
    return head;
  }

  private finishResponse(extraBytes: boolean): void {
    const sink = this.sink!;
    this.sink = undefined;
    const reusable = this.keepAlive && !extraBytes && !this.dead;
    sink.responseEnd(!this.keepAlive);
    if (!reusable) this.destroy();
    else this.onIdleClose(this);
  }

  /** The exchange committed the response: stream its body. */
  resumeResponse(): void {
    if (!this.held) return;
    this.held = false;
    if (this.endPending) {
      this.endPending = false;
      this.finishResponse(this.parser.remaining > 0);
      return;
    }
    this.run();
    if (!this.held && !this.dead) this.socket.resume();
  }

  /** Flow control from the client side. */
  pause(): void {
    this.socket.pause();
  }
  resume(): void {
    if (!this.held) this.socket.resume();
  }

  private readonly onEnd = (): void => {
    if (this.sink && this.gotHead) {
      const r = this.parser.finish();
      if (r === 'complete') {
        const sink = this.sink;
        this.sink = undefined;
        this.dead = true;
        sink.responseEnd(true);
        this.destroy();
        return;
      }
    }
    this.fail('reset');
  };

  private readonly onClose = (): void => {
    this.dead = true;
    clearTimeout(this.idleTimer);
    if (this.sink) this.fail('reset');
    this.parser.destroy();
    this.onIdleClose(this);
  };

  private fail(reason: string): void {
    const sink = this.sink;
    this.sink = undefined;
    this.destroy();
    sink?.upstreamError(reason, this.gotHead);
  }

  /** Hands an idle connection over (an upgrade relays bytes on it from now on): the codec lets go of it. */
  detach(): Duplex {
    clearTimeout(this.idleTimer);
    this.sink = undefined;
    this.dead = true;
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onClose);
    this.parser.destroy();
    return this.socket;
  }

  /** Closes the connection; the exchange using it is not told (it asked for this). */
  destroy(): void {
    this.sink = undefined;
    this.dead = true;
    clearTimeout(this.idleTimer);
    if (!this.socket.destroyed) this.socket.destroy();
  }
}

/** Idle upstream connections, LIFO per key (the most recently used first: warm, and the rest can time out). */
export class H1Pool {
  private readonly idle = new Map<string, H1Upstream[]>();

  constructor(private readonly idleTimeoutMs: number) {}

  take(key: string): H1Upstream | undefined {
    const list = this.idle.get(key);
    while (list && list.length > 0) {
      const u = list.pop()!;
      if (!u.dead) {
        clearTimeout(u.idleTimer);
        return u;
      }
    }
    return undefined;
  }

  /** Called by an upstream connection when its response ended and it may be reused, or when it closed. */
  readonly put = (u: H1Upstream): void => {
    let list = this.idle.get(u.key);
    if (u.dead) {
      if (list) {
        const i = list.indexOf(u);
        if (i >= 0) list.splice(i, 1);
        if (list.length === 0) this.idle.delete(u.key);
      }
      return;
    }
    if (u.maxUses > 0 && u.uses >= u.maxUses) {
      // maxRequestsPerConnection reached: closed rather than pooled (the next request opens a new one)
      u.destroy();
      return;
    }
    if (!list) this.idle.set(u.key, (list = []));
    list.push(u);
    u.idleTimer = setTimeout(() => u.destroy(), u.idleTimeoutMs ?? this.idleTimeoutMs);
    u.idleTimer.unref?.();
  };

  get size(): number {
    let n = 0;
    for (const l of this.idle.values()) n += l.length;
    return n;
  }

  close(): void {
    for (const l of this.idle.values()) for (const u of l) u.destroy();
    this.idle.clear();
  }
}

function NOOP(): void {}
