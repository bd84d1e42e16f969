// The HTTP/1 codec: the real H1ServerConn (head parsing, chunked bodies, pipelining, upgrade/CONNECT, the
// head size limit) and the real H1Upstream response parser, each over an in-memory socket, fed generated
// messages (mutated sometimes) cut at random points. The handler answers at the head or at the end of
// the request, with backpressure or not. Oracles: nothing throws; once the client has sent everything and
// half-closed, the connection has answered or refused and is closed (or handed over for an upgrade);
// a refusal is 400, 408 or 431; the upstream side tells its exchange exactly once how the response ended.
import fc from 'fast-check';
import { H1ServerConn, type H1ServerHandler, type RequestSink } from '../../../agent/proxy/h1/server.js';
import { H1Upstream, type ResponseSink } from '../../../agent/proxy/h1/upstream.js';
import { MemSocket } from '../mem-socket.js';
import { applyOps, mutations } from '../mutate.js';
import { OracleViolation, type FuzzContext, type FuzzTarget } from '../target.js';
import { request, response } from './h1-grammar.js';

export interface ServerInput {
  side: 'server';
  bytes: Buffer;
  cuts: number[];
  respond: 'head' | 'end';
  close: boolean;
  backpressure: boolean;
}

export interface UpstreamInput {
  side: 'upstream';
  bytes: Buffer;
  cuts: number[];
  isHead: boolean;
  resumeLater: boolean;
}

type Input = ServerInput | UpstreamInput;

const OPTIONS = { maxHeaderSize: 2048, headersTimeoutMs: 60_000, keepAliveTimeoutMs: 60_000, idleTimeoutMs: 60_000 };
const OK = Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n', 'latin1');

function pieces(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of at) {
    if (c > from) out.push(bytes.subarray(from, c));
    from = Math.max(from, c);
  }
  if (from < bytes.length) out.push(bytes.subarray(from));
  return out;
}

/** Drives one server connection; returns what the oracle looks at. */
export function runServer(input: ServerInput): { sock: MemSocket; upgraded: boolean; refusals: number[] } {
  const sock = new MemSocket();
  let upgraded = false;
  const refusals: number[] = [];
  const handler: H1ServerHandler = {
    request(conn) {
      let held = false;
      const respond = () => {
        conn.write(OK);
        conn.done(input.close);
      };
      const sink: RequestSink = {
        body() {
          if (!input.backpressure || held) return true;
          held = true;
          sock.later(() => conn.resumeBody());
          return false;
        },
        end() {
          if (input.respond === 'end') sock.later(respond);
        },
        aborted() {},
      };
      if (input.respond === 'head') sock.later(respond);
      return sink;
    },
    upgrade() {
      upgraded = true;
      sock.destroy();
    },
    refused(_conn, status) {
      refusals.push(status);
    },
  };
  const conn = new H1ServerConn(sock.asDuplex(), handler, OPTIONS);
  for (const p of pieces(input.bytes, input.cuts)) {
    sock.push(p);
    sock.settle();
  }
  sock.pushEnd();
  sock.settle();
  // a connection whose client is gone must not hold its timers (or the proxy leaks them per connection)
  if (!sock.destroyed) conn.destroy();
  sock.settle();
  return { sock, upgraded, refusals };
}

export function runUpstream(input: UpstreamInput): { outcomes: string[] } {
  const sock = new MemSocket();
  const outcomes: string[] = [];
  let u: H1Upstream;
  const sink: ResponseSink = {
    informational() {},
    responseHead() {
      if (input.resumeLater) sock.later(() => u.resumeResponse());
      else u.resumeResponse();
    },
    responseBody() {},
    responseEnd(close) {
      outcomes.push(`end${close ? ' close' : ''}`);
    },
    upstreamError(reason) {
      outcomes.push(`error ${reason}`);
    },
  };
  u = new H1Upstream(sock.asDuplex(), 'fuzz', () => {});
  u.start(sink, Buffer.from(`${input.isHead ? 'HEAD' : 'GET'} / HTTP/1.1\r\nhost: x\r\n\r\n`), input.isHead);
  for (const p of pieces(input.bytes, input.cuts)) {
    sock.push(p);
    sock.settle();
  }
  sock.pushEnd();
  sock.settle();
  return { outcomes };
}

function checkServer(input: ServerInput): void {
  const { sock, upgraded, refusals } = runServer(input);
  for (const s of refusals) if (s !== 400 && s !== 408 && s !== 431) throw new OracleViolation('wrong', `refused with status ${s}`);
  if (!upgraded && !sock.writableEnded && !sock.destroyed) throw new OracleViolation('hang', 'the client sent everything and half-closed, and the connection is still open');
  if (refusals.length > 0 && !upgraded && !/HTTP\/1\.1 (400|408|431) /.test(sock.output) && sock.output.length === 0) {
    throw new OracleViolation('wrong', 'refused without telling the client (no status line, nothing written)');
  }
}

function checkUpstream(input: UpstreamInput): void {
  const { outcomes } = runUpstream(input);
  if (outcomes.length !== 1) throw new OracleViolation(outcomes.length === 0 ? 'hang' : 'wrong', `the exchange was told ${outcomes.length} times how the response ended (${outcomes.join(', ')}); once is right`);
}

const cuts = fc.array(fc.nat(), { maxLength: 6 });

export const serverInput: fc.Arbitrary<ServerInput> = fc
  .record({ msgs: fc.array(request, { minLength: 1, maxLength: 4 }), ops: mutations(), cuts, respond: fc.constantFrom('head' as const, 'end' as const), close: fc.boolean(), backpressure: fc.boolean() })
  .map(({ msgs, ops, ...rest }) => {
    const b = Buffer.from(msgs.join(''), 'latin1');
    return { side: 'server' as const, bytes: applyOps(b, ops, [b]), ...rest };
  });

export const upstreamInput: fc.Arbitrary<UpstreamInput> = fc
  .record({ msgs: fc.array(response, { minLength: 1, maxLength: 3 }), ops: mutations(), cuts, isHead: fc.boolean(), resumeLater: fc.boolean() })
  .map(({ msgs, ops, ...rest }) => {
    const b = Buffer.from(msgs.join(''), 'latin1');
    return { side: 'upstream' as const, bytes: applyOps(b, ops, [b]), ...rest };
  });

export const h1Target: FuzzTarget = {
  name: 'h1',
  surface: 'agent/proxy/h1 (H1ServerConn, H1Upstream, llhttp) over an in-memory socket',
  async setup(): Promise<FuzzContext<unknown>> {
    return {
      arbitrary: fc.oneof({ weight: 3, arbitrary: serverInput }, { weight: 1, arbitrary: upstreamInput }) as fc.Arbitrary<unknown>,
      check(raw) {
        const input = raw as Input;
        if (input.side === 'server') checkServer(input);
        else checkUpstream(input);
      },
      show: (raw) => {
        const input = raw as Input;
        return JSON.stringify({ ...input, bytes: input.bytes.toString('latin1') });
      },
      close: async () => {},
    };
  },
};
