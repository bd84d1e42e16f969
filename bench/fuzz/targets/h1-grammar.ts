// HTTP/1 messages as fast-check arbitraries: mostly well-formed requests and responses (so inputs get past
// the request line) with the fields that decide framing, upgrades and limits picked from the values that
// break codecs: duplicate or conflicting Content-Length and Transfer-Encoding, obs-fold, bare LF, NULs,
// bad chunk sizes, chunk extensions, trailers, CONNECT and Upgrade, oversized heads.
import fc from 'fast-check';

const METHODS = ['GET', 'POST', 'PUT', 'HEAD', 'CONNECT', 'OPTIONS', 'DELETE', 'PATCH', 'PRI', 'get', 'G\u0000T', ''];
const TARGETS = ['/', '/a?b=c', '*', 'http://x/', 'http://example.com:80/p', 'example.com:443', '127.0.0.1:80', '[::1]:80', '/%00', '', '/a b', '//', '/\u00ff'];
const VERSIONS = ['HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1 ', 'http/1.1', 'HTTP/1.01', 'HTTP/0.9', ''];
const NAMES = ['Host', 'Content-Length', 'Transfer-Encoding', 'Connection', 'Upgrade', 'Expect', 'Trailer', 'TE', 'Keep-Alive', 'Proxy-Connection', 'X-A', ' Host', 'Host ', 'Content-Length ', 'Transfer-Encoding\t', 'X\u0000', ''];
const VALUES = ['chunked', 'gzip, chunked', 'chunked, gzip', 'identity', 'chunked, chunked', '0', '5', '00005', '-1', '+5', '5, 5', '5,6', '18446744073709551616', ' 5', 'upgrade', 'Upgrade', 'close', 'keep-alive', 'upgrade, close', 'websocket', 'h2c', '100-continue', 'x\r\n y', 'a\nb', '', '\u0000', 'é'];

const value = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...VALUES) }, { weight: 1, arbitrary: fc.string({ maxLength: 20 }) });
const field = fc.tuple(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...NAMES) }, { weight: 1, arbitrary: fc.string({ maxLength: 10 }) }), value);
const eol = fc.oneof({ weight: 8, arbitrary: fc.constant('\r\n') }, { weight: 1, arbitrary: fc.constantFrom('\n', '\r', '\r\r\n', ' \r\n') });

const chunk = fc.record({
  size: fc.oneof({ weight: 6, arbitrary: fc.nat(40) }, { weight: 1, arbitrary: fc.constantFrom(-1, 0xfffffffff, 2 ** 53) }),
  sizeText: fc.option(fc.constantFrom('0x5', 'g', '', ' 5', '5 ', 'ffffffffffffffffff', '1;', '5;a=b', '5;a="b;c"', '5;' + 'x'.repeat(300)), { freq: 8 }),
  data: fc.option(fc.string({ maxLength: 40 }), { freq: 6 }),
});

/** a chunked body: chunks, the last-chunk, trailers */
const chunkedBody = fc.tuple(fc.array(chunk, { maxLength: 5 }), fc.array(field, { maxLength: 2 }), fc.boolean()).map(([chunks, trailers, last]) => {
  let out = '';
  for (const c of chunks) {
    const data = c.data ?? 'x'.repeat(Math.max(0, Math.min(c.size, 64)));
    out += `${c.sizeText ?? c.size.toString(16)}\r\n${data}\r\n`;
  }
  if (last) out += `0\r\n${trailers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
  return out;
});

const body = fc.oneof(fc.constant(''), fc.string({ maxLength: 60 }), chunkedBody);

/** what follows a start line, in either direction: fields, framing (coherent or not), an oversized field, the body */
const rest = fc.record({
  fields: fc.array(field, { maxLength: 6 }),
  framing: fc.constantFrom('none', 'length', 'chunked', 'both', 'wrong-length'),
  body,
  eol,
  big: fc.option(fc.integer({ min: 1, max: 4096 }), { freq: 12 }),
});

function message(startLine: string, r: typeof rest extends fc.Arbitrary<infer R> ? R : never, bodyWithoutFraming: boolean): string {
  const fields = [...r.fields];
  if (r.framing === 'length' || r.framing === 'both') fields.push(['Content-Length', String(Buffer.byteLength(r.body))]);
  if (r.framing === 'wrong-length') fields.push(['Content-Length', String(Buffer.byteLength(r.body) + 3)]);
  if (r.framing === 'chunked' || r.framing === 'both') fields.push(['Transfer-Encoding', 'chunked']);
  if (r.big !== null) fields.push(['X-Big', 'b'.repeat(r.big)]);
  const head = `${startLine}${r.eol}${fields.map(([n, v]) => `${n}: ${v}${r.eol}`).join('')}${r.eol}`;
  return head + (r.framing === 'none' && !bodyWithoutFraming ? '' : r.body);
}

/** a request: a body only with a framing field (without one, the bytes would be the next request) */
export const request = fc
  .record({
    method: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...METHODS) }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) }),
    target: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...TARGETS) }, { weight: 1, arbitrary: fc.string({ maxLength: 20 }) }),
    version: fc.constantFrom(...VERSIONS),
    rest,
  })
  .map((r) => message(`${r.method} ${r.target} ${r.version}`, r.rest, false));

/** a response for the upstream parser: without framing, its body runs to the end of the connection */
export const response = fc
  .record({
    version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2', 'HTTP/1.1 ', ''),
    status: fc.oneof(fc.constantFrom(100, 101, 103, 200, 204, 304, 400, 500, 999, 0), fc.integer({ min: -5, max: 1200 })),
    reason: fc.constantFrom('OK', '', 'Continue', 'x\u0000'),
    rest,
  })
  .map((r) => message(`${r.version} ${r.status} ${r.reason}`, r.rest, true));
