// Key/value codecs for BPF maps: a fixed byte size plus encode/decode over Buffers. Map structs are
// declared in C (bpf/lib/maps.h); their codecs (agent/redirect/layout.ts) spell out each field's offset.
import { isIP } from 'node:net';

import { BpfCodecError } from './errors.js';

export interface Codec<T> {
  /** bytes, exactly the map's key_size or value_size */
  readonly size: number;
  /** write value at buf[offset..offset+size); the bytes must be fully written (zero what is unused) */
  encode(value: T, buf: Buffer, offset?: number): void;
  decode(buf: Buffer, offset?: number): T;
}

export const u32: Codec<number> = {
  size: 4,
  encode: (v, b, o = 0) => void b.writeUInt32LE(v >>> 0, o),
  decode: (b, o = 0) => b.readUInt32LE(o),
};

export const u64: Codec<bigint> = {
  size: 8,
  encode: (v, b, o = 0) => void b.writeBigUInt64LE(BigInt.asUintN(64, v), o),
  decode: (b, o = 0) => b.readBigUInt64LE(o),
};

export type Family = 4 | 6;

/** Strip an IPv4-mapped IPv6 prefix (::ffff:a.b.c.d), as Node reports peers of dual-stack sockets. */
export function unmapIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

/**
 * Write an IP address as 16 bytes in network order (IPv4 in the first 4, zeros after), the layout of
 * `__u32 addr[4]` in maps.h. Returns its family. Throws BpfCodecError on anything that is not an IP.
 */
export function encodeIp(ip: string, buf: Buffer, offset: number): Family {
  buf.fill(0, offset, offset + 16);
  // hot path (the proxy's lookup per connection): dotted IPv4 parsed without allocating
  if (ip.indexOf(':') < 0 && writeIp4(ip, 0, buf, offset)) return 4;
  if (ip.length > 7 && ip.charCodeAt(0) === 58 /* : */ && /^::ffff:/i.test(ip) && writeIp4(ip, 7, buf, offset)) return 4;
  const fam = isIP(ip);
  if (fam === 6) {
    writeIp6(ip, buf, offset);
    return 6;
  }
  throw new BpfCodecError(`"${ip}" is not an IPv4 or IPv6 address`);
}

/** Parse a dotted quad starting at `from` into buf[offset..offset+4); false if it is not exactly one. */
function writeIp4(s: string, from: number, buf: Buffer, offset: number): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = from; i <= s.length; i++) {
    const c = i === s.length ? 46 /* . */ : s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48);
      if (++digits > 3 || value > 255) return false;
    } else if (c === 46) {
      if (digits === 0 || part > 3) return false;
      buf[offset + part++] = value;
      value = 0;
      digits = 0;
    } else return false;
  }
  return part === 4;
}

function writeIp6(addr: string, buf: Buffer, offset: number): void {
  let text = addr;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  // a trailing dotted quad (::ffff:1.2.3.4 not unmapped above, or ::1.2.3.4) becomes two groups
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const p = dotted[1]!.split('.').map(Number);
    text = text.slice(0, -dotted[1]!.length) + `${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  for (let i = 0; i < 8; i++) buf.writeUInt16BE(parseInt(groups[i] ?? '0', 16), offset + i * 2);
}

/** Read an address written by encodeIp (or by the kernel into a `__u32 addr[4]`). */
export function decodeIp(buf: Buffer, offset: number, family: Family): string {
  if (family === 4) return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(offset + i * 2).toString(16));
  // RFC 5952: compress the longest run (>= 2) of zero groups
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** Family of an address string (IPv4-mapped counts as 4), or undefined if it is not an IP. */
export function ipFamily(ip: string): Family | undefined {
  const f = isIP(unmapIp(ip));
  return f === 4 || f === 6 ? f : undefined;
}
