// llhttp (the parser Node itself uses), as undici ships it compiled to WebAssembly, bound the way undici's
// client-h1 binds it: one wasm instance for the process, one parser per connection, callbacks dispatched
// to the connection's state object through a module-level "current" pointer (no per-request closures).
// Strict: no lenient flag is set, so ambiguous framing (CL+TE, duplicate CL, obs-fold, bare LF, bad chunk
// sizes, ...) is an error, never a guess. Message framing is llhttp's alone; this file only reports where
// a head ends and where a message ends, so callers can forward the original bytes.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

// The project's TypeScript lib has no WebAssembly declarations (no DOM lib): the little used here.
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Instance {
    constructor(module: Module, imports: Record<string, Record<string, (...a: number[]) => number>>);
    readonly exports: unknown;
  }
  interface Memory {
    readonly buffer: ArrayBuffer;
  }
}

export const TYPE_REQUEST = 1;
export const TYPE_RESPONSE = 2;
const ERR_OK = 0;
const ERR_PAUSED = 21;
const ERR_PAUSED_UPGRADE = 22;
const METHOD_HEAD = 2;
const METHOD_CONNECT = 5;

interface LlhttpExports {
  memory: WebAssembly.Memory;
  llhttp_alloc(type: number): number;
  llhttp_free(p: number): void;
  llhttp_execute(p: number, data: number, len: number): number;
  llhttp_finish(p: number): number;
  llhttp_resume(p: number): void;
  llhttp_resume_after_upgrade(p: number): void;
  llhttp_get_error_pos(p: number): number;
  llhttp_get_error_reason(p: number): number;
  llhttp_get_method(p: number): number;
  llhttp_get_http_major(p: number): number;
  llhttp_get_http_minor(p: number): number;
  llhttp_message_needs_eof(p: number): number;
  malloc(n: number): number;
  free(p: number): void;
}

/** What a parser reports to its connection while executing (called synchronously from inside execute). */
export interface ParserHandler {
  /** a new message starts (reset per-message state) */
  onMessageBegin(): void;
  /** request target bytes (may come in pieces) */
  onUrl(buf: Buffer, at: number, len: number): void;
  onHeaderField(buf: Buffer, at: number, len: number): void;
  onHeaderValue(buf: Buffer, at: number, len: number): void;
  /**
   * The head is complete. Return true to treat the message as having no body (a response to HEAD); the
   * parser then reports the message complete at once.
   */
  onHeadersComplete(statusCode: number, upgrade: boolean, keepAlive: boolean): boolean;
}

export type Step =
  /** the head ended at `pos` (offset in the chunk); the body (if any) follows */
  | 'head'
  /** a message ended at `pos` */
  | 'complete'
  /** an Upgrade/CONNECT request's head ended at `pos`: what follows is not HTTP */
  | 'upgrade'
  /** the chunk is consumed up to its end with no event */
  | 'more'
  | 'error';

let wasm: LlhttpExports | undefined;
let current: Parser | undefined;
let currentBuf: Buffer | undefined;
let currentPtr = 0;
let bufPtr = 0;
let bufSize = 0;

function instance(): LlhttpExports {
  if (wasm) return wasm;
  let mod: WebAssembly.Module;
  try {
    mod = new WebAssembly.Module(require('undici/lib/llhttp/llhttp_simd-wasm.js') as Buffer);
  } catch {
    mod = new WebAssembly.Module(require('undici/lib/llhttp/llhttp-wasm.js') as Buffer);
  }
  const slice = (at: number, len: number) => [currentBuf!, at - currentPtr, len] as const;
  const inst = new WebAssembly.Instance(mod, {
    env: {
      wasm_on_message_begin: () => {
        const p = current!;
        p.headEvent = 0;
        p.handler.onMessageBegin();
        return 0;
      },
      wasm_on_url: (_p: number, at: number, len: number) => {
        current!.handler.onUrl(...slice(at, len));
        return 0;
      },
      wasm_on_status: () => 0,
      wasm_on_header_field: (_p: number, at: number, len: number) => {
        current!.handler.onHeaderField(...slice(at, len));
        return 0;
      },
      wasm_on_header_value: (_p: number, at: number, len: number) => {
        current!.handler.onHeaderValue(...slice(at, len));
        return 0;
      },
      wasm_on_headers_complete: (_p: number, status: number, upgrade: number, keepAlive: number) => {
        const p = current!;
        const noBody = p.handler.onHeadersComplete(status, upgrade === 1, keepAlive === 1);
        if (noBody) {
          // Skip the body: the message completes right after the head (reported by on_message_complete).
          p.headEvent = 2;
          return 1;
        }
        p.headEvent = 1;
        return ERR_PAUSED;
      },
      wasm_on_body: () => 0,
      wasm_on_message_complete: () => {
        current!.completeEvent = true;
        return ERR_PAUSED;
      },
    },
  });
  wasm = inst.exports as unknown as LlhttpExports;
  return wasm;
}

/** One llhttp parser: feed it chunks, step through heads and message ends. */
export class Parser {
  private ptr: number;
  /** 0 none, 1 head paused, 2 head complete without body (message completes next) */
  headEvent = 0;
  completeEvent = false;
  private chunk: Buffer | undefined;
  private offset = 0;
  private afterHead = false;
  /** position of the last event in the current chunk */
  pos = 0;
  error: string | undefined;
  errorCode = 0;

  constructor(
    readonly type: typeof TYPE_REQUEST | typeof TYPE_RESPONSE,
    readonly handler: ParserHandler,
  ) {
    this.ptr = instance().llhttp_alloc(type);
  }

  get method(): number {
    return wasm!.llhttp_get_method(this.ptr);
  }

  get isHead(): boolean {
    return this.method === METHOD_HEAD;
  }

  get isConnect(): boolean {
    return this.method === METHOD_CONNECT;
  }

  get httpMinor(): number {
    return wasm!.llhttp_get_http_minor(this.ptr);
  }

  get httpMajor(): number {
    return wasm!.llhttp_get_http_major(this.ptr);
  }

  /** The message in progress ends only when the connection closes (a response without length). */
  get needsEof(): boolean {
    return wasm!.llhttp_message_needs_eof(this.ptr) === 1;
  }

  /** Starts parsing a new chunk (the previous one must be consumed). */
  feed(chunk: Buffer): void {
    const w = instance();
    if (chunk.length > bufSize) {
      if (bufPtr) w.free(bufPtr);
      bufSize = Math.ceil(chunk.length / 4096) * 4096;
      bufPtr = w.malloc(bufSize);
    }
    this.chunk = chunk;
    this.offset = 0;
    this.pos = 0;
    this.afterHead = false;
  }

  /** Bytes of the current chunk not parsed yet. */
  get remaining(): number {
    return this.chunk ? this.chunk.length - this.offset : 0;
  }

  /**
   * Parses the current chunk from where the last step stopped, until the next event. The wasm buffer is
   * shared by all parsers, so the chunk is copied in on every step (steps are few per chunk: head, end).
   */
  step(): Step {
    const chunk = this.chunk;
    // After a head, llhttp still has to decide the body (a bodyless message completes with no more input).
    if (!chunk || (this.offset >= chunk.length && !this.afterHead)) return 'more';
    this.afterHead = false;
    const w = wasm!;
    const len = chunk.length - this.offset;
    if (len > 0) new Uint8Array(w.memory.buffer, bufPtr, len).set(chunk.subarray(this.offset));
    this.headEvent = 0;
    this.completeEvent = false;
    let ret: number;
    current = this;
    currentBuf = chunk;
    currentPtr = bufPtr - this.offset;
    try {
      ret = w.llhttp_execute(this.ptr, bufPtr, len);
    } finally {
      current = undefined;
      currentBuf = undefined;
    }
    if (ret === ERR_OK) {
      this.offset = chunk.length;
      this.pos = chunk.length;
      return 'more';
    }
    const at = this.offset + (w.llhttp_get_error_pos(this.ptr) - bufPtr);
    if (ret === ERR_PAUSED) {
      w.llhttp_resume(this.ptr);
      this.offset = at;
      this.pos = at;
      if (this.completeEvent) return 'complete';
      this.afterHead = true;
      return 'head';
    }
    if (ret === ERR_PAUSED_UPGRADE) {
      this.offset = chunk.length;
      this.pos = at;
      return 'upgrade';
    }
    this.offset = chunk.length;
    this.pos = at;
    this.errorCode = ret;
    const rp = w.llhttp_get_error_reason(this.ptr);
    this.error = rp ? Buffer.from(w.memory.buffer, rp, new Uint8Array(w.memory.buffer, rp).indexOf(0)).toString() : `llhttp error ${ret}`;
    return 'error';
  }

  /** The peer closed: completes a message delimited by close; 'error' if a message was cut short. */
  finish(): 'complete' | 'more' | 'error' {
    const w = wasm!;
    this.completeEvent = false;
    current = this;
    let ret: number;
    try {
      ret = w.llhttp_finish(this.ptr);
    } finally {
      current = undefined;
    }
    if (ret === ERR_OK || ret === ERR_PAUSED) return this.completeEvent ? 'complete' : 'more';
    this.errorCode = ret;
    return 'error';
  }

  destroy(): void {
    if (this.ptr) wasm!.llhttp_free(this.ptr);
    this.ptr = 0;
  }
}
