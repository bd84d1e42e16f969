// A minimal HTTP/1.1 keep-alive client connection for load generation: one request in flight, a fixed
// pre-encoded request, and a response parser that understands Content-Length and chunked bodies. It is
// far cheaper per request than node:http, so the generator (not the proxy under test) is rarely the
// bottleneck, and every byte it reads is checked (a truncated or malformed response is an error).
import net from 'node:net';

export interface Http1Target {
  host: string;
  port: number;
  path: string;
  /** Host header; defaults to host */
  hostHeader?: string;
  /** send `Connection: close` and expect the server to close after the response */
  close?: boolean;
}

export function encodeRequest(t: Http1Target): Buffer {
  return Buffer.from(`GET ${t.path} HTTP/1.1\r\nHost: ${t.hostHeader ?? t.host}\r\nUser-Agent: weft-bench\r\n${t.close ? 'Connection: close\r\n' : ''}\r\n`, 'latin1');
}

export interface ParsedResponse {
  status: number;
  bodyBytes: number;
}

/**
 * Incremental HTTP/1.1 response parser. `push` returns a response once it is complete (extra bytes are
 * kept for the next one), or undefined when more bytes are needed. Throws on malformed input.
 */
export class ResponseParser {
  private buf: Buffer = Buffer.alloc(0);
  private status = 0;
  private headerDone = false;
  private contentLength = -1;
  private chunked = false;
  private body = 0;
  private chunkLeft = -1;

  push(chunk: Buffer): ParsedResponse | undefined {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    return this.step();
  }

  /** Bytes received but not yet consumed (a pipelined next response). */
  pending(): number {
    return this.buf.length;
  }

  private reset(): void {
    this.status = 0;
    this.headerDone = false;
    this.contentLength = -1;
    this.chunked = false;
    this.body = 0;
    this.chunkLeft = -1;
  }

  private step(): ParsedResponse | undefined {
    if (!this.headerDone) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.buf.length > 64 * 1024) throw new Error('response header larger than 64 KiB');
        return undefined;
      }
      const head = this.buf.subarray(0, end).toString('latin1');
      this.buf = this.buf.subarray(end + 4);
      const lines = head.split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
      if (!m) throw new Error(`malformed status line: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
      this.status = Number(m[1]);
      for (let i = 1; i < lines.length; i++) {
        const line = lines[i]!;
        const colon = line.indexOf(':');
        if (colon < 0) continue;
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        if (name === 'content-length') this.contentLength = Number(value);
        else if (name === 'transfer-encoding' && value.toLowerCase().includes('chunked')) this.chunked = true;
      }
      if (!this.chunked && this.contentLength < 0) {
        // 1xx/204/304 have no body; anything else without a length is read-until-close, which a keep-alive
        // benchmark cannot use.
        if (this.status === 204 || this.status === 304 || this.status < 200) this.contentLength = 0;
        else throw new Error(`response ${this.status} has neither Content-Length nor chunked encoding`);
      }
      this.headerDone = true;
    }
    if (!this.chunked) {
      if (this.buf.length < this.contentLength) return undefined;
      this.buf = this.buf.subarray(this.contentLength);
      const r = { status: this.status, bodyBytes: this.contentLength };
      this.reset();
      return r;
    }
    for (;;) {
      if (this.chunkLeft === -2) {
        // after the last chunk: trailer lines, up to an empty line
        for (;;) {
          const end = this.buf.indexOf('\r\n');
          if (end < 0) return undefined;
          this.buf = this.buf.subarray(end + 2);
          if (end === 0) break;
        }
        const r = { status: this.status, bodyBytes: this.body };
        this.reset();
        return r;
      }
      if (this.chunkLeft < 0) {
        const eol = this.buf.indexOf('\r\n');
        if (eol < 0) return undefined;
        const size = parseInt(this.buf.subarray(0, eol).toString('latin1'), 16);
        if (!Number.isFinite(size)) throw new Error('malformed chunk size');
        this.buf = this.buf.subarray(eol + 2);
        if (size === 0) {
          this.chunkLeft = -2;
          continue;
        }
        this.chunkLeft = size;
      }
      if (this.buf.length < this.chunkLeft + 2) return undefined;
      this.body += this.chunkLeft;
      this.buf = this.buf.subarray(this.chunkLeft + 2);
      this.chunkLeft = -1;
    }
  }
}

/** One keep-alive connection; `request` resolves with the response or rejects on any error. */
export class Http1Connection {
  private socket: net.Socket | undefined;
  private connecting: Promise<void> | undefined;
  private readonly parser = new ResponseParser();
  private waiter: { resolve: (r: ParsedResponse) => void; reject: (e: Error) => void } | undefined;
  private readonly req: Buffer;
  busy = false;

  constructor(private readonly target: Http1Target) {
    this.req = encodeRequest(target);
  }

  private connect(): Promise<void> {
    this.connecting ??= new Promise<void>((resolve, reject) => {
      const s = net.connect({ host: this.target.host, port: this.target.port, noDelay: true });
      s.once('connect', () => {
        this.socket = s;
        resolve();
      });
      s.on('data', (d: Buffer) => this.onData(d));
      const fail = (e: Error) => {
        this.socket = undefined;
        this.connecting = undefined;
        reject(e);
        this.fail(e);
      };
      s.on('error', fail);
      s.on('close', () => fail(new Error('connection closed by peer')));
    });
    return this.connecting;
  }

  private onData(d: Buffer): void {
    let r: ParsedResponse | undefined;
    try {
      r = this.parser.push(d);
    } catch (e) {
      this.fail(e as Error);
      this.socket?.destroy();
      return;
    }
    if (r && this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      if (this.target.close) this.drop();
      w.resolve(r);
    }
  }

  private fail(e: Error): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(e);
  }

  private drop(): void {
    const s = this.socket;
    this.socket = undefined;
    this.connecting = undefined;
    s?.removeAllListeners('close');
    s?.removeAllListeners('error');
    s?.on('error', () => {});
    s?.destroy();
  }

  async request(): Promise<ParsedResponse> {
    if (!this.socket) await this.connect();
    return new Promise<ParsedResponse>((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.socket!.write(this.req);
    });
  }

  close(): void {
    this.drop();
  }
}
