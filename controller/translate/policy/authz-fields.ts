// Istio AuthorizationPolicy field values -> typed matchers (common/policy/authz.ts). Each parser throws
// WeftConfigError naming the object and the field path, so the store's semantic check (which runs the
// same parsers) refuses exactly what the compiler could not turn into something the agent enforces.
import { isIP } from 'node:net';
import { WeftConfigError } from '../../../common/errors.js';
import type { Cidr, StringMatch } from '../../../common/policy/authz.js';

export const fail = (where: string, path: string, why: string): never => {
  throw new WeftConfigError(`${where}, field ${path}`, why);
};

/**
 * Istio's string match: `*` presence, `abc*` prefix, `*abc` suffix, else exact. A `*` anywhere else is
 * refused, as Istio's validation does (it would otherwise be matched literally and never fire).
 */
export function stringMatch(v: string, where: string, path: string, opts: { ci?: boolean } = {}): StringMatch {
  const ci = opts.ci ? ({ ci: true } as const) : {};
  const value = opts.ci ? v.toLowerCase() : v;
  if (value === '*') return { presence: true };
  if (value.length === 0) return fail(where, path, 'must not be empty');
  const inner = value.slice(1, -1);
  if (inner.includes('*') || (value.startsWith('*') && value.endsWith('*'))) {
    return fail(where, path, `"${v}": "*" is only allowed alone, as a prefix ("*abc") or as a suffix ("abc*")`);
  }
  if (value.endsWith('*')) return { prefix: value.slice(0, -1), ...ci };
  if (value.startsWith('*')) return { suffix: value.slice(1), ...ci };
  return { exact: value, ...ci };
}

/**
 * Principals as Istio writes them (`cluster.local/ns/x/sa/y`) or as SPIFFE IDs (`spiffe://cluster.local/...`)
 * -> patterns over the spiffe:// form the agent sees on a verified peer certificate. Suffix and presence
 * patterns stay as they are (they never see the scheme).
 */
export function principalMatch(v: string, where: string, path: string): StringMatch {
  const bare = v.startsWith('spiffe://') ? v.slice('spiffe://'.length) : v;
  if (bare.length === 0) return fail(where, path, `"${v}" names no identity`);
  const m = stringMatch(bare, where, path);
  if ('exact' in m) {
    if (!/^[^/]+\/ns\/[^/]+\/sa\/[^/]+$/.test(m.exact)) return fail(where, path, `"${v}" is not a principal of the form <trust-domain>/ns/<namespace>/sa/<service-account>`);
    return { exact: `spiffe://${m.exact}` };
  }
  if ('prefix' in m) return { prefix: `spiffe://${m.prefix}` };
  return m;
}

const V4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function v4ToBytes(ip: string): number[] {
  return V4_RE.exec(ip)!.slice(1).map(Number);
}

function v6ToBytes(ip: string): number[] {
  let s = ip;
  const tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    tail.push(...v4ToBytes(s.slice(lastColon + 1)));
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const r = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const fill = rest !== undefined ? 8 - h.length - r.length : 0;
  const groups = [...h, ...Array<string>(fill).fill('0'), ...r].map((g) => parseInt(g, 16));
  const bytes = groups.flatMap((g) => [g >> 8, g & 0xff]);
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

export function ipBytes(ip: string): number[] | undefined {
  const f = isIP(ip);
  if (f === 4) return v4ToBytes(ip);
  if (f === 6) return v6ToBytes(ip);
  return undefined;
}

function bytesToIp(b: number[]): string {
  if (b.length === 4) return b.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return groups.join(':');
}

/** `10.0.0.0/8`, `10.1.2.3` (as /32), `fd00::/8`; the host bits are cleared (Istio accepts them set). */
export function cidr(v: string, where: string, path: string): Cidr {
  const slash = v.indexOf('/');
  const ip = slash < 0 ? v : v.slice(0, slash);
  const family = isIP(ip);
  if (family === 0) return fail(where, path, `"${v}" is not an IP address or CIDR block`);
  const max = family === 4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const b = v.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b) || Number(b) > max) return fail(where, path, `"${v}": prefix length must be 0-${max}`);
    bits = Number(b);
  }
  const bytes = ipBytes(ip)!;
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i]! &= (0xff << (8 - keep)) & 0xff;
  }
  return { family: family as 4 | 6, addr: bytesToIp(bytes), bits };
}

/** Istio writes ports as strings ("8080"); numbers are accepted too. */
export function portNumber(v: unknown, where: string, path: string): number {
  const s = String(v);
  if (!/^[0-9]{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535) return fail(where, path, `"${s}" is not a port number 1-65535`);
  return Number(s);
}

export function serviceAccountRef(v: string, where: string, path: string): string {
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(v)) return fail(where, path, `"${v}" is not <namespace>/<service-account>`);
  return v;
}
