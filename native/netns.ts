// Network namespace helpers: the netns cookie (what bpf_get_netns_cookie returns), read with
// getsockopt(SO_NETNS_COOKIE) on a socket opened in the namespace.
import { closeSync, openSync } from 'node:fs';

import { NetnsError } from './errors.js';
import { libc } from './libc.js';

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
  const c = libc();
  let target: number;
  let home: number;
  try {
    home = openSync('/proc/thread-self/ns/net', 'r');
  } catch (e) {
    throw new NetnsError('cannot open /proc/thread-self/ns/net', { cause: e });
  }
  try {
    try {
      target = openSync(nsPath, 'r');
    } catch (e) {
      throw new NetnsError(`cannot open network namespace ${nsPath}; does it exist?`, { cause: e });
    }
    try {
      if (c.setns(target, CLONE_NEWNET) < 0) {
        throw new NetnsError(`cannot enter network namespace ${nsPath} (needs CAP_SYS_ADMIN)`, { errno: c.errno() });
      }
      try {
        return currentNetnsCookie();
      } finally {
        if (c.setns(home, CLONE_NEWNET) < 0) {
          // Staying in the wrong namespace would silently break everything after: fail loudly.
          throw new NetnsError('cannot return to the original network namespace', { errno: c.errno() });
        }
      }
    } finally {
      closeSync(target);
    }
  } finally {
    closeSync(home);
  }
}
