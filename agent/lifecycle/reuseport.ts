// Listening sockets that two agents (the old one and its successor during a restart or upgrade) or N
// workers can hold on the same port at once: SO_REUSEPORT. Node 20's net.Server cannot set it (22.12+
// has listen({ reusePort })), so the socket is made through the libc binding and handed to
// server.listen({ fd }).
//
// Closing one listener of a SO_REUSEPORT group resets the connections still in its accept queue. With
// net.ipv4.tcp_migrate_req = 1 (Linux >= 5.14, per network namespace) the kernel moves them, and half-open
// ones, to another listener of the group instead: that is what makes the handover hitless. The agent sets
// it for its own network namespace (the node's, where it runs hostNetwork) at startup.
import { fstatSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { libc } from '../../native/libc.js';
import { AF_INET6, sockaddr } from '../../native/sockaddr.js';
import { errnoName } from '../../native/errors.js';
import { ListenError } from '../proxy/errors.js';

const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_REUSEPORT = 15;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;
const EADDRINUSE = 98;

export const MIGRATE_SYSCTL = '/proc/sys/net/ipv4/tcp_migrate_req';

/**
 * Makes closing a SO_REUSEPORT listener hand its queued connections to the group's other listeners, in
 * the calling thread's network namespace. Returns what it found and did (the agent logs it): 'set',
 * 'already', or why not ('unsupported' on kernels before 5.14, or the error).
 */
export function enableRequestMigration(path = MIGRATE_SYSCTL): 'set' | 'already' | string {
  try {
    if (readFileSync(path, 'utf8').trim() === '1') return 'already';
    writeFileSync(path, '1\n');
    return 'set';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'unsupported (Linux < 5.14: queued connections of a closed listener are reset)' : `failed: ${(e as Error).message}`;
  }
}

/** A bound, listening, non-blocking TCP socket with SO_REUSEPORT, as a file descriptor. */
export function reusePortSocket(host: string, port: number, backlog: number): number {
  const c = libc();
  const { buf, family } = sockaddr(host, port);
  const fd = c.socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`socket(): ${errnoName(c.errno())}`);
  try {
    const one = Buffer.alloc(4);
    one.writeInt32LE(1);
    if (c.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) < 0) throw new Error(`SO_REUSEADDR: ${errnoName(c.errno())}`);
    if (c.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, one, 4) < 0) throw new Error(`SO_REUSEPORT: ${errnoName(c.errno())}`);
    if (family === AF_INET6) c.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, one, 4);
    if (c.bind(fd, buf, buf.length) < 0) {
      const errno = c.errno();
      const err = new Error(`bind ${host}:${port}: ${errnoName(errno)}`) as NodeJS.ErrnoException;
      if (errno === EADDRINUSE) err.code = 'EADDRINUSE';
      throw err;
    }
    if (c.listen(fd, backlog) < 0) throw new Error(`listen(): ${errnoName(c.errno())}`);
    return fd;
  } catch (e) {
    c.close(fd);
    throw e;
  }
}

export interface ReuseListenOptions {
  host: string;
  port: number;
  backlog?: number;
  /** what the listener is for, in errors ("outbound", "inbound tunnel") */
  what: string;
  /**
   * How long to keep retrying while the port is held WITHOUT SO_REUSEPORT (an agent from before this
   * change, during the first upgrade to it): it frees the port when it drains.
   */
  retryInUseMs?: number;
}

/** Binds `server` on a SO_REUSEPORT socket; resolves with the bound address. */
export async function listenReusePort(server: Server, o: ReuseListenOptions): Promise<{ host: string; port: number }> {
  const deadline = Date.now() + (o.retryInUseMs ?? 0);
  let fd: number;
  for (;;) {
    try {
      fd = reusePortSocket(o.host, o.port, o.backlog ?? 4096);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      throw new ListenError(o.what, `${o.host}:${o.port}`, e);
    }
  }
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      libc().close(fd);
      reject(new ListenError(o.what, `${o.host}:${o.port}`, err));
    };
    server.once('error', onError);
    // exclusive: in a cluster worker, listen on this fd here rather than asking the primary
    server.listen({ fd, exclusive: true }, () => {
      server.off('error', onError);
      const addr = server.address() as import('node:net').AddressInfo;
      resolve({ host: addr.address, port: addr.port });
    });
  });
}

/** The kernel's socket inode of a listening net.Server (to tell our listeners from a successor's). */
export function listenerInode(server: Server): number | undefined {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (fd === undefined || fd < 0) return undefined;
  try {
    return fstatSync(fd).ino;
  } catch {
    return undefined;
  }
}
