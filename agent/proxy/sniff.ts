// Protocol detection on a captured connection's first bytes. Client-first protocols reveal themselves
// in their first packet; a server-first protocol (SMTP, MySQL, ...) sends nothing until the server
// speaks, so after `timeoutMs` of silence the connection is proxied as opaque TCP.
import type { Socket } from 'node:net';

export type Protocol = 'http1' | 'http2' | 'tls' | 'tcp';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'SEARCH', 'PURGE'];
const METHOD_PREFIXES = METHODS.map((m) => Buffer.from(m + ' ', 'latin1'));
// "<method> <target> HTTP/1.x" — the request line proves HTTP/1 once it is complete.
const REQUEST_LINE = /^[A-Z]+ [^\s]+ HTTP\/1\.[01]\r?$/;
/** Longest request line we wait for before calling it opaque (the header limit still applies later). */
const MAX_SNIFF = 8192;

/** 'more': the bytes so far are a prefix of something we recognise; wait for more. */
export function classify(buf: Buffer): Protocol | 'more' {
  if (buf.length === 0) return 'more';
  // TLS record: handshake (22), version 3.x. A ClientHello is passed through untouched.
  if (buf[0] === 0x16) {
    if (buf.length < 2) return 'more';
    return buf[1] === 0x03 ? 'tls' : 'tcp';
  }
  const n = Math.min(buf.length, H2_PREFACE.length);
  if (buf.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) {
    if (buf.length >= H2_PREFACE.length) return 'http2';
    // "PRI " is also a prefix we have to wait on (it is not an HTTP/1 method).
    return 'more';
  }
  let methodMatch = false;
  for (const p of METHOD_PREFIXES) {
    const m = Math.min(buf.length, p.length);
    if (buf.subarray(0, m).equals(p.subarray(0, m))) {
      if (buf.length <= p.length) return 'more';
      methodMatch = true;
      break;
    }
  }
  if (!methodMatch) return 'tcp';
  const nl = buf.indexOf(0x0a);
  if (nl < 0) return buf.length >= MAX_SNIFF ? 'tcp' : 'more';
  return REQUEST_LINE.test(buf.toString('latin1', 0, nl)) ? 'http1' : 'tcp';
}

export interface SniffResult {
  protocol: Protocol;
  /** bytes read while sniffing; the caller puts them back (`socket.unshift`) before handing over */
  head: Buffer;
}

/**
 * Reads until the protocol is known, the peer half-closes, or `timeoutMs` passes with no verdict.
 * Leaves the socket paused with nothing consumed beyond `head`.
 */
export function sniff(socket: Socket, timeoutMs: number): Promise<SniffResult> {
  return new Promise((resolve) => {
    let head: Buffer = Buffer.alloc(0);
    let done = false;
    const finish = (protocol: Protocol) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      resolve({ protocol, head });
    };
    const onData = (chunk: Buffer) => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const verdict = classify(head);
      if (verdict !== 'more') finish(verdict);
      else if (head.length >= MAX_SNIFF) finish('tcp');
    };
    const onEnd = () => finish('tcp');
    const timer = setTimeout(() => finish('tcp'), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    // Accepted with pauseOnConnect: a 'data' listener alone does not start reading.
    socket.resume();
  });
}

/** A Service port's appProtocol overrides detection (Kubernetes values, plus Istio's names). */
export function protocolFromAppProtocol(appProtocol: string | undefined): Protocol | 'http' | undefined {
  if (!appProtocol) return undefined;
  const p = appProtocol.toLowerCase();
  if (p === 'http2' || p === 'grpc' || p === 'h2c' || p === 'kubernetes.io/h2c' || p === 'grpc-web') return 'http2';
  if (p === 'http' || p === 'http1' || p === 'http/1.1') return 'http1';
  if (p === 'tls' || p === 'https' || p === 'kubernetes.io/wss') return 'tls';
  return 'tcp';
}
