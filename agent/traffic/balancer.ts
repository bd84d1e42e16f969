// Endpoint choice for one request (HTTP, gRPC) or one connection (TCP), skipping ejected endpoints and
// those this request already tried:
// - LEAST_REQUEST (default): power of two choices over peak-EWMA latency × (outstanding + 1), Linkerd's
//   balancer — two distinct endpoints at random, the cheaper wins; an endpoint ten times slower gets a small
//   share, and load spreads without every node herding onto the same "least loaded" endpoint.
// - ROUND_ROBIN: a cursor per backend that survives config versions.
// - RANDOM.
// - consistent hash (header, cookie, source IP): Maglev over the healthy endpoints; a request without the
//   key falls back to LEAST_REQUEST. An ejected endpoint's keys move, the others' stay.
import type { CompiledLoadBalancer } from '../../common/policy/traffic.js';
import type { BackendState } from './backend-state.js';
import { hash32, MaglevTable } from './maglev.js';

export interface Candidate {
  readonly id: string;
}

/** Random source in [0, 1): tests pass a seeded one. */
export type Rand = () => number;

const NONE: readonly string[] = [];

function usable(b: BackendState, id: string, tried: readonly string[]): boolean {
  if (tried.length > 0 && tried.includes(id)) return false;
  const s = b.endpoints.get(id);
  return !s?.ejected;
}

/** Indices of endpoints that may take traffic (not ejected, not tried); `out` is reused. */
function available<T extends Candidate>(eps: readonly T[], b: BackendState, tried: readonly string[], out: number[]): number[] {
  out.length = 0;
  for (let i = 0; i < eps.length; i++) if (usable(b, eps[i]!.id, tried)) out.push(i);
  return out;
}

const scratch: number[] = [];

export function pickLeastRequest<T extends Candidate>(eps: readonly T[], b: BackendState, tried: readonly string[], rand: Rand, now: number): T | undefined {
  const av = available(eps, b, tried, scratch);
  if (av.length === 0) return undefined;
  if (av.length === 1) return eps[av[0]!];
  const i = Math.floor(rand() * av.length);
  let j = Math.floor(rand() * (av.length - 1));
  if (j >= i) j++;
  const a = eps[av[i]!]!;
  const c = eps[av[j]!]!;
  const ca = b.endpoint(a.id).cost(now);
  const cc = b.endpoint(c.id).cost(now);
  return cc < ca ? c : a;
}

export function pickRoundRobin<T extends Candidate>(eps: readonly T[], b: BackendState, tried: readonly string[]): T | undefined {
  const n = eps.length;
  for (let k = 0; k < n; k++) {
    const ep = eps[b.rr % n]!;
    b.rr = b.rr >= 1 << 30 ? 0 : b.rr + 1;
    if (usable(b, ep.id, tried)) return ep;
  }
  return undefined;
}

export function pickRandom<T extends Candidate>(eps: readonly T[], b: BackendState, tried: readonly string[], rand: Rand): T | undefined {
  const av = available(eps, b, tried, scratch);
  return av.length === 0 ? undefined : eps[av[Math.floor(rand() * av.length)]!];
}

/** Maglev over the healthy endpoints (sorted ids, so the table depends on the set only, not on order or version). */
export function pickHashed<T extends Candidate>(eps: readonly T[], b: BackendState, key: string, tried: readonly string[], rand: Rand, now: number): T | undefined {
  const healthy: T[] = [];
  for (const ep of eps) if (usable(b, ep.id, NONE)) healthy.push(ep);
  if (healthy.length === 0) return undefined;
  healthy.sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  const setKey = healthy.map((e) => e.id).join(',');
  if (b.maglev?.key !== setKey) b.maglev = { key: setKey, table: new MaglevTable(healthy.map((e) => e.id)) };
  const ep = healthy[b.maglev.table.lookup(hash32(key))]!;
  // A retry must go elsewhere: the next best is the least loaded of the rest.
  if (tried.length > 0 && tried.includes(ep.id)) return pickLeastRequest(eps, b, tried, rand, now);
  return ep;
}

/** The hash key of a request for a consistent-hash policy, or undefined (then LEAST_REQUEST decides). */
export interface HashInput {
  header(lowerName: string): string | undefined;
  sourceIp: string;
}

/** Value of one cookie in a Cookie header. */
export function cookieValue(cookieHeader: string | undefined, name: string): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function hashKey(lb: CompiledLoadBalancer, input: HashInput): string | undefined {
  switch (lb.kind) {
    case 'HASH_HEADER':
      return input.header(lb.header);
    case 'HASH_COOKIE':
      return cookieValue(input.header('cookie'), lb.cookie);
    case 'HASH_SOURCE_IP':
      return input.sourceIp;
    default:
      return undefined;
  }
}

export function pick<T extends Candidate>(lb: CompiledLoadBalancer, eps: readonly T[], b: BackendState, key: string | undefined, tried: readonly string[], rand: Rand, now: number): T | undefined {
  switch (lb.kind) {
    case 'ROUND_ROBIN':
      return pickRoundRobin(eps, b, tried);
    case 'RANDOM':
      return pickRandom(eps, b, tried, rand);
    case 'LEAST_REQUEST':
      return pickLeastRequest(eps, b, tried, rand, now);
    default:
      return key === undefined ? pickLeastRequest(eps, b, tried, rand, now) : pickHashed(eps, b, key, tried, rand, now);
  }
}
