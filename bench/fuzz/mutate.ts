// Byte-level mutation of valid seeds, as a fast-check arbitrary (so a failing input shrinks toward the
// seed): bit flips, interesting bytes, inserts, deletes, duplicated ranges, truncation and splices from
// another seed. Most mutants stay close to valid, which reaches the code behind the first syntax check.
import fc from 'fast-check';

type Op =
  | { k: 'flip'; at: number; bit: number }
  | { k: 'set'; at: number; v: number }
  | { k: 'insert'; at: number; bytes: Uint8Array }
  | { k: 'delete'; at: number; len: number }
  | { k: 'dup'; at: number; len: number; times: number }
  | { k: 'truncate'; at: number }
  | { k: 'splice'; at: number; from: number; other: number; len: number };

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x0d, 0x0a, 0x20, 0x09, 0x3a, 0x3b, 0x2c, 0x22, 0x30, 0x39, 0x2d, 0x2f, 0x5b, 0x5d, 0x7b, 0x7d];

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ k: fc.constant('set' as const), at: fc.nat(), v: fc.oneof(fc.constantFrom(...INTERESTING), fc.nat(255)) }),
  fc.record({ k: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ k: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ k: fc.constant('dup' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 64 }), times: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ k: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ k: fc.constant('splice' as const), at: fc.nat(), from: fc.nat(), other: fc.nat(), len: fc.integer({ min: 1, max: 256 }) }),
);

export function applyOps(seed: Buffer, ops: readonly Op[], seeds: readonly Buffer[]): Buffer {
  let b = Buffer.from(seed);
  for (const o of ops) {
    const n = b.length;
    const at = n === 0 ? 0 : o.at % (n + 1);
    switch (o.k) {
      case 'flip':
        if (n > 0) b[at % n]! ^= 1 << o.bit;
        break;
      case 'set':
        if (n > 0) b[at % n] = o.v;
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), o.bytes, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + o.len)]);
        break;
      case 'dup': {
        const part = b.subarray(at, at + o.len);
        b = Buffer.concat([b.subarray(0, at), ...Array<Buffer>(o.times).fill(part), b.subarray(at)]);
        break;
      }
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'splice': {
        const other = seeds[o.other % seeds.length]!;
        const from = other.length === 0 ? 0 : o.from % other.length;
        b = Buffer.concat([b.subarray(0, at), other.subarray(from, from + o.len), b.subarray(at)]);
        break;
      }
    }
  }
  return b;
}

/** A seed, mutated 1 to `maxOps` times (0 sometimes: the valid seed itself). */
export function mutatedBytes(seeds: readonly Buffer[], maxOps = 6): fc.Arbitrary<Buffer> {
  return fc
    .tuple(fc.nat(seeds.length - 1), fc.array(op, { minLength: 0, maxLength: maxOps }))
    .map(([i, ops]) => applyOps(seeds[i]!, ops, seeds));
}

/** Arbitrary text of the kinds that break parsers: control bytes, long runs, unicode, numbers. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '\u0000', '\r\n', '-1', '0', '1e309', 'NaN', '__proto__', 'constructor', 'null', '*', '/', '..', '%00', 'a'.repeat(70_000)),
);

/** Mutations to apply to bytes made by a grammar: none most of the time, up to `max` otherwise. */
export function mutations(max = 4): fc.Arbitrary<Op[]> {
  return fc.oneof({ weight: 3, arbitrary: fc.constant([] as Op[]) }, { weight: 2, arbitrary: fc.array(op, { minLength: 1, maxLength: max }) });
}

export type { Op as Mutation };
