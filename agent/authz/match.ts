// The primitive matches of Istio's AuthorizationPolicy: string patterns and address blocks. Address blocks
// are turned into bytes once per config version (prepareCidr), so a per-request check is a few integer
// compares.
import { isIP } from 'node:net';
import type { Cidr, StringMatch } from '../../common/policy/authz.js';

export function matchString(m: StringMatch, value: string | undefined): boolean {
  // Istio: an absent attribute never matches a positive pattern, presence needs a non-empty value
  if (value === undefined || value === '') return false;
  if ('presence' in m) return true;
  const v = m.ci ? value.toLowerCase() : value;
  if ('exact' in m) return v === m.exact;
  if ('prefix' in m) return v.startsWith(m.prefix);
  return v.endsWith(m.suffix);
}

export function matchAny(list: readonly StringMatch[], value: string | undefined): boolean {
  for (const m of list) if (matchString(m, value)) return true;
  return false;
}

export interface PreparedCidr {
  bytes: Uint8Array;
  bits: number;
}

/** Parses an address to bytes (4 or 16); v4-mapped v6 addresses (::ffff:a.b.c.d) as their v4 form. */
export function addressBytes(ip: string): Uint8Array | undefined {
  const s = ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
  const f = isIP(s);
  if (f === 4) {
    const p = s.split('.');
    return Uint8Array.of(+p[0]!, +p[1]!, +p[2]!, +p[3]!);
  }
  if (f !== 6) return undefined;
  let str = s;
  let tail: number[] = [];
  const lc = str.lastIndexOf(':');
  if (str.slice(lc + 1).includes('.')) {
    tail = str.slice(lc + 1).split('.').map(Number);
    str = `${str.slice(0, lc + 1)}0:0`;
  }
  const dbl = str.indexOf('::');
  const head = dbl < 0 ? str.split(':') : str.slice(0, dbl) ? str.slice(0, dbl).split(':') : [];
  const rest = dbl < 0 ? [] : str.slice(dbl + 2) ? str.slice(dbl + 2).split(':') : [];
  const groups = [...head, ...Array<string>(dbl < 0 ? 0 : 8 - head.length - rest.length).fill('0'), ...rest];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

export function prepareCidr(c: Cidr): PreparedCidr {
  return { bytes: addressBytes(c.addr)!, bits: c.bits };
}

export function inCidr(c: PreparedCidr, addr: Uint8Array | undefined): boolean {
  if (!addr || addr.length !== c.bytes.length) return false;
  let bits = c.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((addr[i]! & mask) !== (c.bytes[i]! & mask)) return false;
  }
  return true;
}

export function inAnyCidr(list: readonly PreparedCidr[], addr: Uint8Array | undefined): boolean {
  for (const c of list) if (inCidr(c, addr)) return true;
  return false;
}
