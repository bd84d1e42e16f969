// Transparent source addresses: the node proxy connects to a local pod FROM the real caller's pod address,
// so the pod (its logs, Kubernetes NetworkPolicy, ipBlocks) sees who called, as ambient's ztunnel does.
// Node cannot set IP_TRANSPARENT, so the socket is made through the libc binding: socket (non-blocking),
// IP_TRANSPARENT, bind to the caller's address, connect; the handshake is then polled with a zero timeout
// (to a pod on this node it has usually completed by the time connect returns), again on timers backing off
// to 20 ms, never blocking the event loop nor holding a libuv pool thread (a pool thread blocked per slow
// connect could starve the agent's file I/O); the connected fd is then handed to net.Socket.
//
// Replies to the caller's address must come back to this socket, not to the caller: the node's policy
// routing (transparent-routing.ts) delivers packets of transparent sockets locally. And because the pod now
// sees a source address that is not the node's, the STRICT guard recognises the proxy's SYN by the 4-tuple
// the proxy registers between bind and connect (SynRegistry), never by the source address.
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import { libc } from '../../native/libc.js';
import { AF_INET, AF_INET6, sockaddr } from '../../native/sockaddr.js';
import { errnoName } from '../../native/errors.js';
import { UpstreamError } from './errors.js';

const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const SOL_IP = 0;
const IP_TRANSPARENT = 19;
const SOL_IPV6 = 41;
const IPV6_TRANSPARENT = 75;
const EINPROGRESS = 115;
const POLLOUT = 4;

/** The 4-tuple as the destination pod sees it; registered with the STRICT guard while the SYN is in flight. */
export interface ProxySyn {
  sourceIp: string;
  sourcePort: number;
  ip: string;
  port: number;
}

export interface SynRegistry {
  register(s: ProxySyn): void;
  forget(s: ProxySyn): void;
}

export interface TransparentConnect {
  /** the caller's address: the pod will see the connection come from here */
  sourceIp: string;
  ip: string;
  port: number;
  timeoutMs: number;
  /** the STRICT guard's registry; without it a STRICT pod drops the connection */
  syns?: SynRegistry;
}

function portOf(buf: Buffer): number {
  return buf.readUInt16BE(2);
}

/** A TCP connection to ip:port whose source address is `sourceIp` (not one of this node's). */
export async function connectTransparent(o: TransparentConnect): Promise<net.Socket> {
  const c = libc();
  const src = sockaddr(o.sourceIp, 0);
  const dst = sockaddr(o.ip, o.port);
  if (src.family !== dst.family) throw new UpstreamError('connect_failed', `transparent connect ${o.sourceIp} → ${o.ip}: address families differ`);
  const v6 = dst.family === AF_INET6;
  const fd = c.socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new UpstreamError('connect_failed', `socket(): ${errnoName(c.errno())}`);
  let syn: ProxySyn | undefined;
  let handed = false;
  const fail = (what: string, errno: number) =>
    new UpstreamError('connect_failed', `transparent connect ${o.sourceIp} → ${o.ip}:${o.port}: ${what} (${errnoName(errno)})${errno === 1 ? '; the agent needs CAP_NET_ADMIN for IP_TRANSPARENT' : ''}`);
  try {
    const one = Buffer.alloc(4);
    one.writeInt32LE(1);
    if (c.setsockopt(fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, one, 4) < 0) throw fail('IP_TRANSPARENT', c.errno());
    if (c.bind(fd, src.buf, src.buf.length) < 0) throw fail(`bind to ${o.sourceIp}`, c.errno());
    const name = Buffer.alloc(28);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(name.length);
    if (c.getsockname(fd, name, len) < 0) throw fail('getsockname', c.errno());
    syn = { sourceIp: o.sourceIp, sourcePort: portOf(name), ip: o.ip, port: o.port };
    o.syns?.register(syn);
    if (c.connect(fd, dst.buf, dst.buf.length) < 0) {
      const e = c.errno();
      if (e !== EINPROGRESS) throw fail('connect', e);
      const pfd = Buffer.alloc(8);
      pfd.writeInt32LE(fd, 0);
      pfd.writeInt16LE(POLLOUT, 4);
      const deadline = Date.now() + o.timeoutMs;
      let wait = 0;
      for (;;) {
        const n = c.poll(pfd, 1, 0);
        if (n < 0) throw fail('poll', c.errno());
        if (n > 0) break;
        if (Date.now() >= deadline) throw new UpstreamError('connect_timeout', `connect to ${o.ip}:${o.port} (from ${o.sourceIp}) timed out after ${o.timeoutMs} ms`);
        wait = Math.min(20, wait === 0 ? 1 : wait * 2);
        await sleep(wait);
      }
      const err = Buffer.alloc(4);
      const elen = Buffer.alloc(4);
      elen.writeUInt32LE(4);
      if (c.getsockopt(fd, SOL_SOCKET, SO_ERROR, err, elen) < 0) throw fail('SO_ERROR', c.errno());
      const soError = err.readInt32LE(0);
      if (soError !== 0) throw fail('connect', soError);
    }
    const sock = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
    handed = true;
    sock.setNoDelay(true);
    return sock;
  } finally {
    if (syn) o.syns?.forget(syn);
    if (!handed) c.close(fd);
  }
}

/** How the proxy connects to a pod on this node; `sourceIp`: the caller's address, when known. */
export type PodConnector = (o: { sourceIp: string | undefined; ip: string; port: number; timeoutMs: number }) => Promise<net.Socket>;

/**
 * Transparent when the caller's address is known and of the pod's family; from the node's address otherwise
 * (a caller outside the mesh that reached the proxy, or an unknown source).
 */
export function transparentPodConnector(syns: SynRegistry | undefined, plain: PodConnector): PodConnector {
  return (o) => {
    if (!o.sourceIp || o.sourceIp.includes(':') !== o.ip.includes(':')) return plain(o);
    return connectTransparent({ sourceIp: o.sourceIp, ip: o.ip, port: o.port, timeoutMs: o.timeoutMs, ...(syns ? { syns } : {}) });
  };
}
