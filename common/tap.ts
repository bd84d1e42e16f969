// The tap contract shared by the agents, the controller and `weft tap` / `weft top`: what one tapped request
// looks like, the filter an operator gives, and which header values are never shown. The filter travels
// as JSON from the CLI through the controller to every agent, and is checked there, before anything about
// a request is copied: a request that does not match costs only the comparisons below.
import { WeftConfigError, WeftError } from './errors.js';

/** One side's view of a workload in a tapped request. */
export interface TapPeer {
  workload: string | null;
  namespace: string | null;
  /** the pod's name, when this proxy knows it (the source pod on its own node, the destination pod once picked) */
  pod: string | null;
  /** SPIFFE ID; null for a caller outside the mesh */
  principal: string | null;
  /** ip or ip:port as this proxy saw it */
  addr: string | null;
}

/** One request as one proxy saw it (reporter source: the caller's node; destination: the callee's). */
export interface TapEvent {
  type: 'request';
  /** ISO time the exchange ended */
  time: string;
  node: string;
  reporter: 'source' | 'destination';
  direction: 'outbound' | 'inbound';
  source: TapPeer;
  destination: TapPeer & { service: string | null };
  /** mutual TLS between the two proxies (cross node); same node or from outside the mesh: false */
  tls: boolean;
  protocol: string;
  method: string;
  authority: string;
  path: string;
  /** HTTP status sent to the client; 0: none (the connection broke first) */
  status: number;
  grpcStatus?: number;
  latencyMs: number;
  bytesReceived: number;
  bytesSent: number;
  /** Envoy's response flags; empty when none */
  responseFlags: string[];
  route: string | null;
  policy: string | null;
  /** attempts the caller's proxy made (retries); 1 on the destination's side */
  attempts: number;
  /** the trace id this proxy forwarded (tracing on), else the caller's (W3C or B3), as in the access log */
  traceId: string | null;
  /** request headers, [name, value]; sensitive values replaced by REDACTED, long lists and values cut */
  headers: [string, string][];
}

/** What an agent tells the tapper besides events: requests it left out, and why. */
export interface TapDrops {
  type: 'drops';
  node: string;
  /** the agent's queue was full (the controller or the network is slower than the requests) */
  queue: number;
  /** over the tap's rate cap (--max-rps) */
  rate: number;
  /** the controller could not write to the tapper fast enough */
  controller: number;
}

/** The first line of a tap stream: which agents were asked, and which were not reachable from this controller. */
export interface TapStart {
  type: 'start';
  id: string;
  maxRps: number;
  nodes: string[];
  missing: string[];
}

export type TapLine = TapStart | TapEvent | TapDrops;

/** Header names whose values a tap never carries (matched lower-case). */
export const SENSITIVE_HEADERS: ReadonlySet<string> = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);
export const REDACTED = '<redacted>';
/** a tapped request carries at most this many headers, each value cut to MAX_HEADER_VALUE characters */
export const MAX_HEADERS = 32;
export const MAX_HEADER_VALUE = 256;

/** [name, value, name, value, ...] as received → pairs safe to show: sensitive values redacted, bounded. */
export function safeHeaders(raw: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length && out.length < MAX_HEADERS; i += 2) {
    const name = raw[i]!;
    const value = SENSITIVE_HEADERS.has(name.toLowerCase()) ? REDACTED : raw[i + 1]!;
    out.push([name, value.length > MAX_HEADER_VALUE ? `${value.slice(0, MAX_HEADER_VALUE)}…` : value]);
  }
  return out;
}

/** What a tap selects. Every field set must match (AND); unset fields match everything. */
export interface TapFilter {
  /** the selector's namespace: the source or the destination is in it */
  namespace?: string;
  /** the selector's workload (with namespace): the source or the destination is it */
  workload?: string;
  /** --to NAMESPACE[/WORKLOAD]: the destination */
  toNamespace?: string;
  toWorkload?: string;
  /** --pod NAME: the source or the destination pod */
  pod?: string;
  /** --path PREFIX */
  pathPrefix?: string;
  /** --method, upper case */
  method?: string;
  /** --status: a class (1..5, from "2xx") or an exact code */
  statusClass?: number;
  status?: number;
}

export const DEFAULT_MAX_RPS = 100;
export const MAX_MAX_RPS = 1000;

/** The tap's fields a filter looks at, read off a request without building an event. */
export interface TapSubject {
  srcWorkload: string | undefined;
  srcNamespace: string | undefined;
  srcPod: string | undefined;
  dstWorkload: string | undefined;
  dstNamespace: string | undefined;
  dstPod: string | undefined;
  method: string;
  path: string;
  status: number;
}

function selects(ns: string | undefined, wl: string | undefined, sNs: string | undefined, sWl: string | undefined): boolean {
  return (ns === undefined || ns === sNs) && (wl === undefined || wl === sWl);
}

export function matchesFilter(f: TapFilter, s: TapSubject): boolean {
  if (f.namespace !== undefined && !selects(f.namespace, f.workload, s.srcNamespace, s.srcWorkload) && !selects(f.namespace, f.workload, s.dstNamespace, s.dstWorkload)) return false;
  if (f.toNamespace !== undefined && !selects(f.toNamespace, f.toWorkload, s.dstNamespace, s.dstWorkload)) return false;
  if (f.pod !== undefined && f.pod !== s.srcPod && f.pod !== s.dstPod) return false;
  if (f.pathPrefix !== undefined && !s.path.startsWith(f.pathPrefix)) return false;
  if (f.method !== undefined && f.method !== s.method) return false;
  if (f.status !== undefined && f.status !== s.status) return false;
  if (f.statusClass !== undefined && Math.floor(s.status / 100) !== f.statusClass) return false;
  return true;
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function name(where: string, v: string): string {
  if (!NAME.test(v)) throw new WeftConfigError(where, `"${v}" is not a Kubernetes name (lower-case letters, digits, '-' and '.')`);
  return v;
}

/** "ns" or "ns/workload" */
function nsWorkload(where: string, v: string): { ns: string; wl?: string } {
  const parts = v.split('/');
  if (parts.length > 2 || !parts[0]) throw new WeftConfigError(where, `"${v}" is not NAMESPACE or NAMESPACE/WORKLOAD`);
  return { ns: name(where, parts[0]), ...(parts[1] ? { wl: name(where, parts[1]) } : {}) };
}

/** The options `weft tap`/`weft top` take (and the controller's query parameters), as given. */
export interface TapOptions {
  selector?: string | undefined;
  to?: string | undefined;
  pod?: string | undefined;
  path?: string | undefined;
  method?: string | undefined;
  status?: string | undefined;
}

/** Options → filter; every value is checked so nothing given is silently ignored. */
export function parseTapFilter(o: TapOptions): TapFilter {
  const f: TapFilter = {};
  if (o.selector) {
    const s = nsWorkload('selector', o.selector);
    f.namespace = s.ns;
    if (s.wl) f.workload = s.wl;
  }
  if (o.to) {
    const s = nsWorkload('--to', o.to);
    f.toNamespace = s.ns;
    if (s.wl) f.toWorkload = s.wl;
  }
  if (o.pod) f.pod = name('--pod', o.pod);
  if (o.path !== undefined && o.path !== '') {
    if (!o.path.startsWith('/')) throw new WeftConfigError('--path', `"${o.path}" is not a path prefix (it starts with /)`);
    f.pathPrefix = o.path;
  }
  if (o.method) {
    if (!/^[A-Za-z]+$/.test(o.method)) throw new WeftConfigError('--method', `"${o.method}" is not an HTTP method`);
    f.method = o.method.toUpperCase();
  }
  if (o.status) {
    const cls = /^([1-5])xx$/i.exec(o.status);
    if (cls) f.statusClass = Number(cls[1]);
    else if (/^[1-5]\d\d$/.test(o.status)) f.status = Number(o.status);
    else throw new WeftConfigError('--status', `"${o.status}" is not a status class (2xx, 4xx, 5xx, ...) or a code (404)`);
  }
  return f;
}

/** A filter received as JSON (from the controller, on an agent): only known fields of the right types. */
export function filterFromJson(text: string): TapFilter {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new WeftConfigError('tap filter', `not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new WeftConfigError('tap filter', 'not an object');
  const out: TapFilter = {};
  const strings = ['namespace', 'workload', 'toNamespace', 'toWorkload', 'pod', 'pathPrefix', 'method'] as const;
  const numbers = ['statusClass', 'status'] as const;
  for (const [k, val] of Object.entries(v)) {
    if ((strings as readonly string[]).includes(k) && typeof val === 'string') out[k as (typeof strings)[number]] = val;
    else if ((numbers as readonly string[]).includes(k) && typeof val === 'number' && Number.isInteger(val)) out[k as (typeof numbers)[number]] = val;
    else throw new WeftConfigError('tap filter', `unknown field or wrong type: ${k}`);
  }
  return out;
}

export function parseMaxRps(v: string | undefined): number {
  if (v === undefined || v === '') return DEFAULT_MAX_RPS;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > MAX_MAX_RPS) throw new WeftConfigError('--max-rps', `"${v}" is not a whole number from 1 to ${MAX_MAX_RPS}`);
  return n;
}

/** The controller refused a tap (too many open, or no agent to ask). */
export class TapError extends WeftError {
  constructor(message: string) {
    super('WEFT_ERR_TAP', message);
  }
}
