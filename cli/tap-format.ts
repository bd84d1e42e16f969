// One tapped request as one line, key=value as linkerd viz tap prints them: which proxy saw it (node,
// direction), who called whom (namespace/workload, pod, SPIFFE ID), mTLS, the request and its outcome.
// Header values are only in -o json (already redacted by the agent).
import type { TapEvent, TapPeer } from '../common/tap.js';
import { ms, paint, type Color, type Out } from './output.js';

function who(p: TapPeer): string {
  if (!p.workload) return p.addr ?? '-';
  return `${p.namespace ?? '-'}/${p.workload}`;
}

function statusColor(status: number): Color {
  return status === 0 || status >= 500 ? 'red' : status >= 400 ? 'yellow' : 'green';
}

function bytes(n: number): string {
  return n < 10_000 ? `${n}B` : n < 10_000_000 ? `${Math.round(n / 1000)}kB` : `${Math.round(n / 1_000_000)}MB`;
}

export function formatTapEvent(o: Out, e: TapEvent): string {
  const parts = [
    e.time.slice(11, 23),
    `node=${e.node}`,
    `dir=${e.direction === 'outbound' ? 'out' : 'in'}`,
    `src=${who(e.source)}`,
    ...(e.source.pod ? [`src_pod=${e.source.pod}`] : []),
    `src_id=${e.source.principal ?? '-'}`,
    `dst=${who(e.destination)}`,
    ...(e.destination.pod ? [`dst_pod=${e.destination.pod}`] : []),
    `dst_id=${e.destination.principal ?? '-'}`,
    `tls=${e.tls}`,
    `:method=${e.method}`,
    `:authority=${e.authority}`,
    `:path=${e.path}`,
    paint(o, statusColor(e.status), `:status=${e.status || '-'}`),
    ...(e.grpcStatus !== undefined ? [`grpc-status=${e.grpcStatus}`] : []),
    `latency=${ms(e.latencyMs)}`,
    `bytes=${bytes(e.bytesReceived)}/${bytes(e.bytesSent)}`,
    `flags=${e.responseFlags.length ? e.responseFlags.join(',') : '-'}`,
  ];
  return parts.join(' ') + '\n';
}
