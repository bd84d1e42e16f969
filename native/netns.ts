// Network namespace helpers: the netns cookie (what bpf_get_netns_cookie returns), read with
// getsockopt(SO_NETNS_COOKIE) on a socket opened in the namespace.
import { closeSync, openSync } from 'node:fs';

import { NetnsError } from './errors.js';
import { libc } from './libc.js';
import { AF_INET6, sockaddr } from './sockaddr.js';

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_NETNS_COOKIE = 71;
const CLONE_NEWNET = 0x40000000;

/** Cookie of the calling thread's network namespace (Linux >= 5.14). */
export function currentNetnsCookie(): bigint {
  const c = libc();
  const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new NetnsError('cannot open a socket to read the netns cookie', { errno: c.errno() });
  try {
    const value = Buffer.alloc(8);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(8);
    if (c.getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, value, len) < 0) {
      throw new NetnsError('getsockopt(SO_NETNS_COOKIE) failed; Linux 5.14 or newer is needed', { errno: c.errno() });
    }
    return value.readBigUInt64LE(0);
  } finally {
    c.close(fd);
  }
}

/**
 * Cookie of the network namespace at `nsPath` (/run/netns/NAME, /proc/PID/ns/net). The calling thread
 * enters it, opens a socket, and returns to its own namespace before this function returns; setns only
 * affects the calling thread, and nothing else runs on it meanwhile (the call is synchronous).
 */
export function netnsCookie(nsPath: string): bigint {
  return inNetns(nsPath, currentNetnsCookie);
}

const SOCK_STREAM = 1;
const SO_REUSEADDR = 2;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;

/**
 * A listening TCP socket created inside the network namespace at `nsPath`, returned as a file descriptor
 * (hand it to `net.Server.listen({ fd })`). A socket belongs to the namespace it was created in, so the
 * calling process can serve a namespace it does not live in.
 */
export function tcpListenerInNetns(nsPath: string, ip: string, port: number, backlog = 511): number {
  return inNetns(nsPath, () => {
    const c = libc();
    const { buf, family } = sockaddr(ip, port);
    const fd = c.socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new NetnsError('socket() failed', { errno: c.errno() });
    try {
      const one = Buffer.alloc(4);
      one.writeInt32LE(1);
      c.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4);
      if (family === AF_INET6) c.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, one, 4);
      if (c.bind(fd, buf, buf.length) < 0) throw new NetnsError(`cannot bind ${ip}:${port} in ${nsPath}`, { errno: c.errno() });
      if (c.listen(fd, backlog) < 0) throw new NetnsError(`cannot listen on ${ip}:${port} in ${nsPath}`, { errno: c.errno() });
      return fd;
    } catch (e) {
      c.close(fd);
      throw e;
    }
  });
}

/** Run `fn` with the calling thread inside the network namespace `nsPath`, then return to the original one. */
export function inNetns<T>(nsPath: string, fn: () => T): T {
  const c = libc();
  const home = openSync('/proc/thread-self/ns/net', 'r');
  try {
    let target: number;
    try {
      target = openSync(nsPath, 'r');
    } catch (e) {
      throw new NetnsError(`cannot open network namespace ${nsPath}; does it exist?`, { cause: e });
    }
    try {
      if (c.setns(target, CLONE_NEWNET) < 0) throw new NetnsError(`cannot enter network namespace ${nsPath} (needs CAP_SYS_ADMIN)`, { errno: c.errno() });
      try {
        return fn();
      } finally {
        if (c.setns(home, CLONE_NEWNET) < 0) throw new NetnsError('cannot return to the original network namespace', { errno: c.errno() });
      }
    } finally {
      closeSync(target);
    }
  } finally {
    closeSync(home);
  }
}
