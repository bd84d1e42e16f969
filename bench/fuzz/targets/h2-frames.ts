// HTTP/2 frames by hand (RFC 9113 §4.1) and HPACK literals without indexing or Huffman (RFC 7541 §6.2.2),
// so a fuzz input can say anything a peer could put on the wire: bad pseudo-headers, CONNECT with and
// without :authority, header blocks split over CONTINUATION frames or oversized, frames on stream 0 or on
// even streams, and frame types a client must not send.
import fc from 'fast-check';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const F = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

export function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length & 0xffffff, 0, 3);
  h[3] = type & 0xff;
  h[4] = flags & 0xff;
  h.writeUInt32BE(stream >>> 0, 5);
  return Buffer.concat([h, payload]);
}

function hpackInt(n: number, prefixBits: number, first: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (n < max) return Buffer.from([first | n]);
  const out = [first | max];
  n -= max;
  while (n >= 128) {
    out.push((n % 128) + 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

function hpackString(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  return Buffer.concat([hpackInt(b.length, 7, 0), b]);
}

/** a header block of literal fields without indexing */
export function headerBlock(fields: readonly (readonly [string, string])[]): Buffer {
  return Buffer.concat(fields.flatMap(([n, v]) => [Buffer.from([0]), hpackString(n), hpackString(v)]));
}

export function settings(pairs: readonly (readonly [number, number])[]): Buffer {
  const b = Buffer.alloc(pairs.length * 6);
  pairs.forEach(([id, v], i) => {
    b.writeUInt16BE(id & 0xffff, i * 6);
    b.writeUInt32BE(v >>> 0, i * 6 + 2);
  });
  return frame(T.SETTINGS, 0, 0, b);
}

/** the fields of a tunnel CONNECT as a source proxy sends them, and the ways a hostile peer bends them */
export function connectFields(podAuthority: string): fc.Arbitrary<[string, string][]> {
  const authority = fc.oneof(
    { weight: 6, arbitrary: fc.constant(podAuthority) },
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        '127.0.20.2',
        '127.0.20.2:0',
        '127.0.20.2:99999',
        '127.0.20.2:-1',
        '[127.0.20.2]:1',
        '[::1]:80',
        '127.0.10.1:80',
        ':80',
        'x:y',
        '',
        `${podAuthority}\u0000`,
        `${podAuthority} `,
        `user@${podAuthority}`,
        '127.0.20.2:' + '9'.repeat(400),
        'a'.repeat(20_000),
      ),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
  );
  // the fields a source proxy sends (weighted so most streams get past node:http2's own checks) and the
  // ones a hostile peer adds
  const good = fc.constantFrom<[string, string]>(
    ['x-weft-protocol', 'http1'],
    ['x-weft-protocol', 'h2'],
    ['x-weft-protocol', 'tcp'],
    ['x-weft-protocol', ''],
    ['forwarded', 'for=127.0.10.1'],
    ['forwarded', 'for="[::1]"'],
    ['forwarded', 'for=127.0.20.2'],
    ['forwarded', 'for=' + '1'.repeat(500)],
    ['baggage', 'k8s.namespace.name=default,k8s.workload.name=sleep,service.name=db'],
    ['baggage', 'k8s.namespace.name=kube-system,k8s.workload.name=x'],
    ['baggage', ',,=;=,a'],
    ['x-big', 'b'.repeat(70_000)],
  );
  const bad = fc.constantFrom<[string, string]>([':path', '/'], [':scheme', 'https'], [':protocol', 'websocket'], [':status', '200'], [':bogus', 'x'], ['connection', 'keep-alive'], ['te', 'gzip'], ['Upper', 'case'], ['', 'empty-name']);
  const extra = fc.array(
    fc.oneof({ weight: 8, arbitrary: good }, { weight: 1, arbitrary: bad }, { weight: 1, arbitrary: fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 20 })) }),
    { maxLength: 3 },
  );
  return fc
    .record({ method: fc.oneof({ weight: 8, arbitrary: fc.constant('CONNECT') }, { weight: 1, arbitrary: fc.constantFrom('GET', 'connect', '', 'CONNECT ') }), authority: fc.option(authority, { freq: 12 }), extra, dupAuthority: fc.constantFrom(false, false, false, false, false, false, false, true), methodLast: fc.constantFrom(false, false, false, false, false, false, false, true) })
    .map(({ method, authority, extra, dupAuthority, methodLast }) => {
      const f: [string, string][] = [];
      if (!methodLast) f.push([':method', method]);
      if (authority !== null) f.push([':authority', authority]);
      if (dupAuthority && authority !== null) f.push([':authority', '127.0.10.1:80']);
      f.push(...extra);
      if (methodLast) f.push([':method', method]);
      return f;
    });
}

const streamId = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(1, 3, 5) }, { weight: 1, arbitrary: fc.constantFrom(0, 2, 0x7fffffff, 0x80000001) });

/** a HEADERS frame (split over CONTINUATION sometimes) carrying a tunnel CONNECT, bent or not */
export function connectHeaders(podAuthority: string): fc.Arbitrary<Buffer> {
  return fc
    .record({ stream: streamId, fields: connectFields(podAuthority), endStream: fc.boolean(), split: fc.option(fc.nat(), { freq: 3 }), endHeaders: fc.constantFrom(true, true, true, false), padded: fc.boolean() })
    .map(({ stream, fields, endStream, split, endHeaders, padded }) => {
      const block = headerBlock(fields);
      const flags = (endStream ? F.END_STREAM : 0) | (padded ? F.PADDED : 0);
      const body = (b: Buffer) => (padded ? Buffer.concat([Buffer.from([4]), b, Buffer.alloc(4)]) : b);
      if (split === null || block.length < 2) return frame(T.HEADERS, flags | (endHeaders ? F.END_HEADERS : 0), stream, body(block));
      const at = 1 + (split % (block.length - 1));
      return Buffer.concat([frame(T.HEADERS, flags, stream, body(block.subarray(0, at))), frame(T.CONTINUATION, endHeaders ? F.END_HEADERS : 0, stream, block.subarray(at))]);
    });
}

/** one frame of a client's conversation after the preface */
export function clientFrame(podAuthority: string): fc.Arbitrary<Buffer> {
  const stream = streamId;
  return fc.oneof(
    { weight: 6, arbitrary: connectHeaders(podAuthority) },
    { weight: 2, arbitrary: fc.record({ stream, data: fc.uint8Array({ maxLength: 64 }), end: fc.boolean() }).map(({ stream, data, end }) => frame(T.DATA, end ? F.END_STREAM : 0, stream, Buffer.from(data))) },
    { weight: 1, arbitrary: fc.record({ stream, code: fc.nat(20) }).map(({ stream, code }) => frame(T.RST_STREAM, 0, stream, Buffer.from([0, 0, 0, code]))) },
    { weight: 1, arbitrary: fc.array(fc.tuple(fc.nat(10), fc.oneof(fc.nat(), fc.constantFrom(0, 1, 16383, 16384, 2 ** 24, 2 ** 31, 2 ** 32 - 1))), { maxLength: 3 }).map((p) => settings(p)) },
    { weight: 1, arbitrary: fc.record({ ack: fc.boolean(), len: fc.constantFrom(8, 8, 0, 9) }).map(({ ack, len }) => frame(T.PING, ack ? F.ACK : 0, 0, Buffer.alloc(len))) },
    { weight: 1, arbitrary: fc.record({ stream: fc.oneof(fc.constant(0), stream), inc: fc.constantFrom(0, 1, 65535, 2 ** 31 - 1, 2 ** 31) }).map(({ stream, inc }) => frame(T.WINDOW_UPDATE, 0, stream, Buffer.from([(inc >>> 24) & 0xff, (inc >>> 16) & 0xff, (inc >>> 8) & 0xff, inc & 0xff]))) },
    { weight: 1, arbitrary: fc.record({ stream, dep: fc.nat(7) }).map(({ stream, dep }) => frame(T.PRIORITY, 0, stream, Buffer.from([0, 0, 0, dep, 16]))) },
    { weight: 1, arbitrary: fc.record({ type: fc.constantFrom(T.PUSH_PROMISE, T.GOAWAY, T.CONTINUATION, 0x0a, 0xff), flags: fc.nat(255), stream, payload: fc.uint8Array({ maxLength: 24 }) }).map(({ type, flags, stream, payload }) => frame(type, flags, stream, Buffer.from(payload))) },
  );
}
