// The server side of our HTTP/1 codec, over any Duplex (a pod's captured socket on the source node, a
// tunnel CONNECT stream on the destination node): llhttp finds each head and each message end; the head's
// original bytes and the body's bytes in their original framing (chunks and trailers included) are handed
// on, never re-encoded. One request at a time per connection: the next pipelined request is parsed once the
// response to the current one is complete, so responses go out in order. Backpressure both ways: a sink that
// cannot take more body pauses the reading, a response writer waits for 'drain'.
import type { Duplex } from 'node:stream';
import { ambiguousFraming, HeadCollector } from './head.js';
import { Parser, TYPE_REQUEST, type ParserHandler } from './llhttp.js';

export interface H1Request {
  method: string;
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1 */
  minor: number;
  /** fields as received: [name, value, ...] */
  raw: string[];
  /** the head's original bytes (request line to the empty line) */
  head: Buffer;
  /** llhttp's verdict from version and Connection */
  keepAlive: boolean;
  /** Upgrade (with Connection: upgrade) or CONNECT: after the head the connection is not HTTP any more */
  upgrade: boolean;
  /** a body follows the head (Content-Length > 0 or chunked) */
  hasBody: boolean;
}

/** Where a request's body goes, and who hears about the client going away. */
export interface RequestSink {
  /** body bytes in their original framing; false asks the connection to stop reading until resumeBody() */
  body(buf: Buffer): boolean;
  /** the request message is complete */
  end(): void;
  /** the client connection closed or failed before the exchange finished */
  aborted(): void;
}

export interface H1ServerHandler {
  request(conn: H1ServerConn, req: H1Request): RequestSink;
  /** an Upgrade/CONNECT head: the handler takes the stream over (conn.detach() was called); `rest` follows the head */
  upgrade(conn: H1ServerConn, req: H1Request, rest: Buffer): void;
  /** a request the codec refused: 400 (bad framing), 431 (head too large), 408 (head too slow) */
  refused(conn: H1ServerConn, status: number, reason: string): void;
}

export interface H1ServerOptions {
  maxHeaderSize: number;
  /** a request head must be complete this long after its first byte */
  headersTimeoutMs: number;
  /** an idle kept-alive connection is closed after this long */
  keepAliveTimeoutMs: number;
  /** a connection with a request in flight and no bytes either way is closed after this long; 0: never */
  idleTimeoutMs: number;
}

const enum Phase {
  Head,
  Body,
  /** request complete, response not yet */
  Waiting,
  Detached,
  Closed,
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

export class H1ServerConn implements ParserHandler {
  private readonly parser: Parser;
  private readonly headers = new HeadCollector();
  private phase = Phase.Head;
  private headParts: Buffer[] = [];
  private headSize = 0;
  private from = 0;
  private chunk: Buffer | undefined;
  private sink: RequestSink | undefined;
  private keepAlive = false;
  private upgrade = false;
  private responding = false;
  private responseDone = false;
  private responseStarted = false;
  private closeAfter = false;
  private clientEnded = false;
  private paused = false;
  private timer: NodeJS.Timeout | undefined;
  /** requests served on this connection */
  served = 0;
  draining = false;

  constructor(
    readonly socket: Duplex,
    private readonly handler: H1ServerHandler,
    private readonly o: H1ServerOptions,
    /** data the caller already read (sniffing) */
    first?: Buffer,
  ) {
    this.parser = new Parser(TYPE_REQUEST, this);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('error', NOOP);
    this.arm(o.keepAliveTimeoutMs);
    if (first && first.length > 0) this.onData(first);
  }

  // ---- llhttp callbacks -----------------------------------------------------------------------
  onMessageBegin(): void {
    this.headers.reset();
  }
  onUrl(buf: Buffer, at: number, len: number): void {
    this.headers.url_(buf, at, len);
  }
  onHeaderField(buf: Buffer, at: number, len: number): void {
    this.headers.field(buf, at, len);
  }
  onHeaderValue(buf: Buffer, at: number, len: number): void {
    this.headers.value(buf, at, len);
  }
  onHeadersComplete(_status: number, upgrade: boolean, keepAlive: boolean): boolean {
    this.headers.done = true;
    this.upgrade = upgrade;
    this.keepAlive = keepAlive;
    return false;
  }

  // ---- reading ---------------------------------------------------------------------------------
  private readonly onData = (chunk: Buffer): void => {
    if (this.phase === Phase.Detached || this.phase === Phase.Closed) return;
    if (this.phase === Phase.Head && this.headSize === 0 && this.headParts.length === 0) this.arm(this.o.headersTimeoutMs);
    this.parser.feed(chunk);
    this.chunk = chunk;
    this.from = 0;
    this.run();
  };

  private run(): void {
    const p = this.parser;
    const chunk = this.chunk!;
    for (;;) {
      if (this.phase === Phase.Waiting || this.phase === Phase.Detached || this.phase === Phase.Closed || this.paused) return;
      const step = p.step();
      switch (step) {
        case 'more': {
          if (this.phase === Phase.Head) {
            if (this.from < chunk.length) {
              const part = chunk.subarray(this.from);
              this.headParts.push(part);
              this.headSize += part.length;
              if (this.headSize > this.o.maxHeaderSize) return this.refuse(431, 'header_too_large');
            }
          } else if (this.phase === Phase.Body && this.from < chunk.length) {
            this.toBody(chunk.subarray(this.from));
          }
          this.from = chunk.length;
          return;
        }
        case 'head': {
          const part = chunk.subarray(this.from, p.pos);
          this.headSize += part.length;
          if (this.headSize > this.o.maxHeaderSize) return this.refuse(431, 'header_too_large');
          let head = this.headParts.length === 0 ? part : Buffer.concat([...this.headParts, part]);
          this.headParts = [];
          this.headSize = 0;
          // RFC 9112 §2.2: empty lines before a request line are ignored; they are not part of the head.
          let skip = 0;
          while (skip < head.length && (head[skip] === 0x0d || head[skip] === 0x0a)) skip++;
          if (skip > 0) head = head.subarray(skip);
          this.from = p.pos;
          this.onHead(head, chunk);
          break;
        }
        case 'complete': {
          if (this.phase === Phase.Body && this.from < p.pos) this.toBody(chunk.subarray(this.from, p.pos));
          this.from = p.pos;
          this.phase = Phase.Waiting;
          const sink = this.sink;
          sink?.end();
          if (this.responseDone) this.next();
          else {
            // Hold pipelined requests (in this chunk, and unread in the socket) until the response is done.
            this.socket.pause();
            this.arm(this.o.idleTimeoutMs);
            const w = this.onWaiting;
            this.onWaiting = undefined;
            w?.();
          }
          break;
        }
        case 'upgrade':
          // Handled at the head (onHead); nothing more to parse.
          return;
        case 'error':
          return this.refuse(400, p.error ?? 'bad_request');
      }
    }
  }

  private onHead(head: Buffer, chunk: Buffer): void {
    const raw = this.headers.raw;
    const p = this.parser;
    const bad = ambiguousFraming(raw, p.httpMinor);
    if (bad) return this.refuse(400, bad);
    const sp = head.indexOf(0x20);
    const req: H1Request = {
      method: head.toString('latin1', 0, sp),
      target: this.headers.url,
      minor: p.httpMinor,
      raw,
      head,
      keepAlive: this.keepAlive && !this.draining,
      upgrade: this.upgrade,
      hasBody: false,
    };
    if (this.upgrade) {
      this.detach();
      this.handler.upgrade(this, req, chunk.subarray(p.pos));
      return;
    }
    // llhttp decided the framing: a body follows when the message did not complete right at the head.
    req.hasBody = hasBodyFields(raw);
    this.served++;
    this.responding = true;
    this.responseDone = false;
    this.responseStarted = false;
    this.closeAfter = !req.keepAlive;
    this.phase = Phase.Body;
    this.arm(this.o.idleTimeoutMs);
    this.sink = this.handler.request(this, req);
  }

  private toBody(buf: Buffer): void {
    if (!this.sink) return;
    if (!this.sink.body(buf)) this.pauseReading();
  }

  private pauseReading(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  /** The sink can take body bytes again. */
  resumeBody(): void {
    if (!this.paused) return;
    this.paused = false;
    this.run();
    const now = this.phase as Phase;
    if ((now === Phase.Head || now === Phase.Body) && !this.paused) this.socket.resume();
  }

  /** Request and response both complete: parse the next pipelined request, or close. */
  private next(): void {
    this.sink = undefined;
    this.onWaiting = undefined;
    this.responding = false;
    if (this.closeAfter || this.clientEnded || this.draining) return this.end();
    this.phase = Phase.Head;
    this.arm(this.o.keepAliveTimeoutMs);
    this.run();
    const now = this.phase as Phase;
    if ((now === Phase.Head || now === Phase.Body) && !this.paused) this.socket.resume();
  }

  private readonly onEnd = (): void => {
    this.clientEnded = true;
    if (this.phase === Phase.Head && !this.responding) {
      // A partial head at EOF is dropped; an idle connection just closes.
      this.end();
    } else if (this.phase === Phase.Body) {
      // The body was cut short.
      this.sink?.aborted();
      this.destroy();
    }
    // Waiting: the response still goes out, then the connection ends (next()).
  };

  private readonly onClose = (): void => {
    const was = this.phase;
    this.phase = Phase.Closed;
    this.disarm();
    this.parser.destroy();
    if (was !== Phase.Detached && this.responding && !this.responseDone) this.sink?.aborted();
  };

  // ---- writing ---------------------------------------------------------------------------------

  /** Writes response bytes; false when the socket's buffer is full (wait for 'drain'). */
  write(buf: Buffer): boolean {
    if (this.phase === Phase.Closed) return true;
    this.responseStarted = true;
    return this.socket.write(buf);
  }

  /** The response is complete. `close`: the connection cannot carry another (body ended by close, upstream said so). */
  done(close: boolean): void {
    if (this.responseDone) return;
    this.responseDone = true;
    if (close) this.closeAfter = true;
    if (this.phase === Phase.Waiting) return this.next();
    if (this.phase === Phase.Body && this.closeAfter) {
      // Answered before the request body ended and nothing else can follow: stop reading it.
      this.end();
    }
  }

  /** Must the response say Connection: close (the client asked, or we will close after it)? */
  get willClose(): boolean {
    return this.closeAfter || this.draining;
  }

  /**
   * While a complete request waits before going upstream (a circuit's pending queue), the paused socket is
   * read again so a client that leaves is noticed (`left` on its end of stream; a reset closes the
   * connection, which aborts the sink): bytes that arrive meanwhile (a pipelined request) are kept, at most
   * a head's worth before reading pauses, and put back in order when the watch ends. Nothing to watch in
   * other phases (a body still arriving is held by backpressure) or once the client has ended.
   */
  watchClient(left: () => void): () => void {
    if (this.phase === Phase.Waiting) return this.startWatch(left);
    if (this.phase !== Phase.Body) return NOOP;
    // The head is in, the rest of the message not yet (parsed in the same read, or a body): watch once complete.
    let stop: (() => void) | undefined;
    this.onWaiting = () => (stop = this.startWatch(left));
    return () => {
      this.onWaiting = undefined;
      stop?.();
    };
  }

  /** called when the request in flight becomes complete (Phase.Waiting) */
  private onWaiting: (() => void) | undefined;

  private startWatch(left: () => void): () => void {
    const s = this.socket;
    if (this.clientEnded) return NOOP;
    const kept: Buffer[] = [];
    let size = 0;
    let active = true;
    const onData = (c: Buffer): void => {
      kept.push(c);
      size += c.length;
      if (size > this.o.maxHeaderSize) s.pause();
    };
    const stop = (): void => {
      active = false;
      s.off('data', onData);
      s.off('end', onEnd);
      s.pause();
      s.on('data', this.onData);
    };
    const onEnd = (): void => {
      stop();
      left();
    };
    s.off('data', this.onData);
    s.on('data', onData);
    s.once('end', onEnd);
    s.resume();
    return () => {
      if (!active) return;
      stop();
      for (let i = kept.length - 1; i >= 0; i--) s.unshift(kept[i]!);
    };
  }

  /** Stops HTTP processing; the caller owns the stream now (Upgrade/CONNECT relay). */
  detach(): void {
    this.phase = Phase.Detached;
    this.disarm();
    const s = this.socket;
    s.off('data', this.onData);
    s.off('end', this.onEnd);
    s.off('close', this.onClose);
    s.off('error', NOOP);
    s.on('error', NOOP);
    this.parser.destroy();
  }

  /** Graceful drain: an idle connection closes now, a busy one after its response. */
  drain(): void {
    this.draining = true;
    if (this.phase === Phase.Head && !this.responding) this.end();
  }

  private refuse(status: number, reason: string): void {
    this.phase = Phase.Closed;
    this.handler.refused(this, status, reason);
    if (!this.responding || !this.responseStarted) {
      // Nothing of a response went out yet: the client is told why (a body with bad framing included).
      if (this.responding) this.sink?.aborted();
      this.socket.end(Buffer.from(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 'latin1'));
    } else {
      // A response is already under way (bad bytes in a request body): nothing sensible can follow.
      this.sink?.aborted();
      this.destroy();
    }
    this.disarm();
  }

  end(): void {
    this.disarm();
    if (this.phase !== Phase.Detached) this.phase = Phase.Closed;
    if (!this.socket.writableEnded) this.socket.end();
  }

  destroy(): void {
    this.disarm();
    this.phase = Phase.Closed;
    this.socket.destroy();
  }

  private arm(ms: number): void {
    clearTimeout(this.timer);
    this.timer = ms > 0 ? setTimeout(this.onTimeout, ms) : undefined;
    this.timer?.unref?.();
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Activity on the exchange (bytes either way): the in-flight idle timeout starts again. */
  touch(): void {
    this.timer?.refresh();
  }

  private readonly onTimeout = (): void => {
    if (this.phase === Phase.Head && (this.headParts.length > 0 || this.headSize > 0)) return this.refuse(408, 'header_timeout');
    if (this.phase === Phase.Head && !this.responding) return this.end();
    this.sink?.aborted();
    this.destroy();
  };
}

function NOOP(): void {}

function hasBodyFields(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === 17 && n.toLowerCase() === 'transfer-encoding') return true;
    if (n.length === 14 && n.toLowerCase() === 'content-length' && raw[i + 1]!.trim() !== '0') return true;
  }
  return false;
}
