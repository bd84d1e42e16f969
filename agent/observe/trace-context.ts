// Trace context on the wire: what a request carries in (W3C traceparent, else B3 multi-header x-b3-*, else
// B3 single-header b3) and the headers a proxy hop sends on. Pure functions over header values, so the
// parsing rules are tested without a proxy. Malformed values are ignored, as OpenTelemetry's propagators
// do: the request is then treated as having no context.
import type { HeaderEdits } from '../pipeline/stages.js';

/** The context a request arrived with. */
export interface IncomingTrace {
  /** 32 lower-case hex digits (a 64-bit B3 trace id is left-padded with zeros, as OpenTelemetry's B3 propagator does) */
  traceId: string;
  /** the caller's span id (16 hex), undefined when B3 carried a trace id without one */
  parentId: string | undefined;
  /** the caller's sampling decision; undefined: the caller left it to us (B3 without a sampling state) */
  sampled: boolean | undefined;
  /** the request carried the single `b3` header: it is rewritten too (x-b3-* and traceparent are always sent) */
  b3Single: boolean;
  /** the context came from traceparent: its tracestate belongs to it and goes on */
  w3c: boolean;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const ZERO32 = '0'.repeat(32);
const ZERO16 = '0'.repeat(16);

type HeaderOf = (lowerName: string) => string | undefined;

/** W3C first (it is what OpenTelemetry and Envoy's OpenTelemetry tracer speak), then B3 multi, then B3 single. */
export function readTraceContext(header: HeaderOf): IncomingTrace | undefined {
  const b3Single = header('b3');
  return fromTraceparent(header('traceparent'), b3Single !== undefined) ?? fromB3Multi(header, b3Single !== undefined) ?? fromB3Single(b3Single);
}

/** traceparent: version-traceid-parentid-flags; version ff and all-zero ids are invalid (W3C Trace Context §3.2). */
function fromTraceparent(v: string | undefined, b3Single: boolean): IncomingTrace | undefined {
  if (!v) return undefined;
  const parts = v.trim().split('-');
  if (parts.length < 4) return undefined;
  const [version, traceId, parentId, flags] = parts as [string, string, string, string];
  if (!/^[0-9a-f]{2}$/.test(version) || version === 'ff' || (version === '00' && parts.length !== 4)) return undefined;
  if (!HEX32.test(traceId) || traceId === ZERO32 || !HEX16.test(parentId) || parentId === ZERO16 || !/^[0-9a-f]{2}$/.test(flags)) return undefined;
  return { traceId, parentId, sampled: (parseInt(flags, 16) & 1) === 1, b3Single, w3c: true };
}

function b3TraceId(v: string | undefined): string | undefined {
  if (!v) return undefined;
  const id = v.trim().toLowerCase();
  if (HEX32.test(id)) return id === ZERO32 ? undefined : id;
  if (HEX16.test(id)) return id === ZERO16 ? undefined : ZERO16 + id;
  return undefined;
}

/** B3 sampling state: 1/true accept, 0/false deny, d (or x-b3-flags: 1) debug = accept; absent: deferred. */
function b3Sampled(sampled: string | undefined, debug: boolean): boolean | undefined {
  if (debug) return true;
  const s = sampled?.trim().toLowerCase();
  if (s === '1' || s === 'true' || s === 'd') return true;
  if (s === '0' || s === 'false') return false;
  return undefined;
}

function fromB3Multi(header: HeaderOf, b3Single: boolean): IncomingTrace | undefined {
  const traceId = b3TraceId(header('x-b3-traceid'));
  if (!traceId) return undefined;
  const span = header('x-b3-spanid')?.trim().toLowerCase();
  return { traceId, parentId: span && HEX16.test(span) && span !== ZERO16 ? span : undefined, sampled: b3Sampled(header('x-b3-sampled'), header('x-b3-flags')?.trim() === '1'), b3Single, w3c: false };
}

/** b3: {traceid}-{spanid}[-{sampling}[-{parentspanid}]]; a lone sampling state ("0", "1", "d") carries no ids. */
function fromB3Single(v: string | undefined): IncomingTrace | undefined {
  if (!v) return undefined;
  const parts = v.trim().split('-');
  if (parts.length < 2) return undefined;
  const traceId = b3TraceId(parts[0]);
  const span = parts[1]!.toLowerCase();
  if (!traceId || !HEX16.test(span) || span === ZERO16) return undefined;
  return { traceId, parentId: span, sampled: b3Sampled(parts[2], false), b3Single: true, w3c: false };
}

/**
 * A sampling decision sent without ids (`b3: 0|1|d`, or x-b3-sampled / x-b3-flags without x-b3-traceid):
 * B3 allows it, and the decision is the caller's even though the trace starts here. undefined: none.
 */
export function decisionWithoutIds(header: HeaderOf): boolean | undefined {
  const single = header('b3')?.trim().toLowerCase();
  if (single !== undefined && !single.includes('-')) return b3Sampled(single, false);
  return b3Sampled(header('x-b3-sampled'), header('x-b3-flags')?.trim() === '1');
}

/** What a hop forwards: the trace, the span the next hop is a child of, and that span's parent. */
export interface ForwardedTrace {
  traceId: string;
  spanId: string;
  parentId: string | undefined;
  sampled: boolean;
  /** the request had a `b3` header: it is rewritten as well */
  b3Single: boolean;
  /** the request's tracestate belongs to this trace (it came with a valid traceparent); else it is dropped */
  keepTracestate: boolean;
}

/**
 * The headers the next hop gets: traceparent (tracestate is left as it came when it belongs to the trace:
 * W3C lets a hop that adds no entry of its own forward it unchanged), B3 multi-header, and the single b3
 * header when the request had one. A stale x-b3-parentspanid or x-b3-flags of the caller's does not survive.
 */
export function outgoingHeaders(f: ForwardedTrace): HeaderEdits {
  const flag = f.sampled ? '1' : '0';
  const set: Array<readonly [string, string]> = [
    ['traceparent', `00-${f.traceId}-${f.spanId}-0${flag}`],
    ['x-b3-traceid', f.traceId],
    ['x-b3-spanid', f.spanId],
    ['x-b3-sampled', flag],
  ];
  if (f.parentId) set.push(['x-b3-parentspanid', f.parentId]);
  if (f.b3Single) set.push(['b3', `${f.traceId}-${f.spanId}-${flag}${f.parentId ? `-${f.parentId}` : ''}`]);
  // x-b3-flags (debug) is replaced by sampled=1
  const remove = ['x-b3-flags'];
  if (!f.parentId) remove.push('x-b3-parentspanid');
  if (!f.keepTracestate) remove.push('tracestate');
  return { set, remove };
}
