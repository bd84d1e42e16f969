// The few libc calls the binding needs that Node does not expose: setns, socket options (netns cookie),
// mount (bpffs), vsnprintf (to format libbpf's log callback). Loaded once per process, lazily.
import koffi, { type LibraryHandle } from 'koffi';

import { NativeLibraryError } from './errors.js';

export interface Libc {
  close(fd: number): number;
  socket(domain: number, type: number, protocol: number): number;
  getsockopt(fd: number, level: number, name: number, value: Buffer, len: Buffer): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  listen(fd: number, backlog: number): number;
  connect(fd: number, addr: Buffer, len: number): number;
  getsockname(fd: number, addr: Buffer, len: Buffer): number;
  poll(fds: Buffer, nfds: number, timeoutMs: number): number;
  setns(fd: number, nstype: number): number;
  mount(source: string, target: string, fstype: string, flags: number, data: null): number;
  umount2(target: string, flags: number): number;
  vsnprintf(buf: Buffer, size: number, fmt: unknown, ap: unknown): number;
  errno(): number;
}

let cached: Libc | undefined;

export function libc(): Libc {
  if (cached) return cached;
  let lib: LibraryHandle;
  try {
    lib = koffi.load('libc.so.6');
  } catch (e) {
    throw new NativeLibraryError('cannot load libc.so.6 through koffi; Weft capture needs glibc Linux', { cause: e });
  }
  const fns = {
    close: lib.func('int close(int fd)'),
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    getsockopt: lib.func('int getsockopt(int fd, int level, int name, void *value, void *len)'),
    setsockopt: lib.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)'),
    bind: lib.func('int bind(int fd, const void *addr, uint32_t len)'),
    listen: lib.func('int listen(int fd, int backlog)'),
    connect: lib.func('int connect(int fd, const void *addr, uint32_t len)'),
    getsockname: lib.func('int getsockname(int fd, void *addr, void *len)'),
    poll: lib.func('int poll(void *fds, unsigned long nfds, int timeout)'),
    setns: lib.func('int setns(int fd, int nstype)'),
    mount: lib.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)'),
    umount2: lib.func('int umount2(const char *target, int flags)'),
    vsnprintf: lib.func('int vsnprintf(void *buf, size_t size, void *fmt, void *ap)'),
  };
  cached = {
    close: (fd) => fns.close(fd) as number,
    socket: (d, t, p) => fns.socket(d, t, p) as number,
    getsockopt: (fd, level, name, value, len) => fns.getsockopt(fd, level, name, value, len) as number,
    setsockopt: (fd, level, name, value, len) => fns.setsockopt(fd, level, name, value, len) as number,
    bind: (fd, addr, len) => fns.bind(fd, addr, len) as number,
    listen: (fd, backlog) => fns.listen(fd, backlog) as number,
    connect: (fd, addr, len) => fns.connect(fd, addr, len) as number,
    getsockname: (fd, addr, len) => fns.getsockname(fd, addr, len) as number,
    poll: (fds, nfds, timeoutMs) => fns.poll(fds, nfds, timeoutMs) as number,
    setns: (fd, nstype) => fns.setns(fd, nstype) as number,
    mount: (s, t, f, flags, data) => fns.mount(s, t, f, flags, data) as number,
    umount2: (t, flags) => fns.umount2(t, flags) as number,
    vsnprintf: (buf, size, fmt, ap) => fns.vsnprintf(buf, size, fmt, ap) as number,
    errno: () => koffi.errno(),
  };
  return cached;
}
