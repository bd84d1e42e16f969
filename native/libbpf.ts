// Raw koffi declarations for libbpf.so.1 (1.x), loaded once per process. Only native/bpf.ts uses these;
// everything else goes through its typed wrappers.
//
// libbpf 1.x conventions relied on: int-returning calls return -errno on failure (and set errno);
// pointer-returning calls return NULL and set errno.
import koffi, { type LibraryHandle } from 'koffi';

import { NativeLibraryError } from './errors.js';
import { libc } from './libc.js';

/** Opaque libbpf handles, as koffi pointers. */
export type Ptr = unknown;

export interface OpenOpts {
  sz: number;
  object_name: string | null;
  relaxed_maps: boolean;
  pin_root_path: string | null;
  _pad: number;
  kconfig: string | null;
  btf_custom_path: string | null;
  kernel_log_buf: null;
  kernel_log_size: number;
  kernel_log_level: number;
}

export interface Libbpf {
  openOptsSize: number;
  bpf_object__open_file(path: string, opts: OpenOpts): Ptr | null;
  bpf_object__load(obj: Ptr): number;
  bpf_object__close(obj: Ptr): void;
  bpf_object__find_program_by_name(obj: Ptr, name: string): Ptr | null;
  bpf_object__find_map_by_name(obj: Ptr, name: string): Ptr | null;
  bpf_map__fd(map: Ptr): number;
  bpf_program__fd(prog: Ptr): number;
  bpf_program__attach_cgroup(prog: Ptr, cgroupFd: number): Ptr | null;
  bpf_program__attach_netns(prog: Ptr, netnsFd: number): Ptr | null;
  bpf_link__pin(link: Ptr, path: string): number;
  bpf_link__unpin(link: Ptr): number;
  bpf_link__open(path: string): Ptr | null;
  bpf_link__fd(link: Ptr): number;
  bpf_link__detach(link: Ptr): number;
  bpf_link__destroy(link: Ptr): number;
  bpf_link__disconnect(link: Ptr): void;
  bpf_obj_get(path: string): number;
  bpf_link_get_fd_by_id(id: number): number;
  bpf_prog_get_fd_by_id(id: number): number;
  bpf_obj_pin(fd: number, path: string): number;
  bpf_obj_get_info_by_fd(fd: number, info: Buffer, len: Buffer): number;
  bpf_map_lookup_elem(fd: number, key: Buffer, value: Buffer): number;
  bpf_map_update_elem(fd: number, key: Buffer, value: Buffer, flags: bigint): number;
  bpf_map_delete_elem(fd: number, key: Buffer): number;
  bpf_map_lookup_and_delete_elem(fd: number, key: Buffer, value: Buffer): number;
  bpf_map_get_next_key(fd: number, key: Buffer | null, next: Buffer): number;
  libbpf_num_possible_cpus(): number;
  libbpf_probe_bpf_prog_type(progType: number, opts: null): number;
  libbpf_probe_bpf_helper(progType: number, helperId: number, opts: null): number;
  errno(): number;
}

let cached: Libbpf | undefined;

const LIBBPF_INFO = 1; // enum libbpf_print_level: WARN 0, INFO 1, DEBUG 2

/** Messages libbpf printed while `capture` was active; see captureLog. */
let sink: string[] | undefined;
// Formatting buffer for the print callback: verifier logs can be long, and the tail matters most.
const PRINT_BUF_SIZE = 1 << 20;
let printBuf: Buffer | undefined;

export function libbpf(): Libbpf {
  if (cached) return cached;
  let lib: LibraryHandle;
  try {
    lib = koffi.load('libbpf.so.1');
  } catch (e) {
    throw new NativeLibraryError('cannot load libbpf.so.1; install it (Debian/Ubuntu: apt-get install -y libbpf1)', { cause: e });
  }
  koffi.opaque('bpf_object');
  koffi.opaque('bpf_program');
  koffi.opaque('bpf_map');
  koffi.opaque('bpf_link');
  const OpenOptsType = koffi.struct('bpf_object_open_opts', {
    sz: 'size_t',
    object_name: 'const char *',
    relaxed_maps: 'bool',
    pin_root_path: 'const char *',
    _pad: 'uint32_t', // `__u32 :32`, a removed field kept for ABI
    kconfig: 'const char *',
    btf_custom_path: 'const char *',
    kernel_log_buf: 'void *',
    kernel_log_size: 'size_t',
    kernel_log_level: 'uint32_t',
  });
  const PrintFn = koffi.proto('int weft_libbpf_print_fn(int level, void *fmt, void *args)');

  const f = {
    open: lib.func('bpf_object *bpf_object__open_file(const char *path, const bpf_object_open_opts *opts)'),
    load: lib.func('int bpf_object__load(bpf_object *obj)'),
    close: lib.func('void bpf_object__close(bpf_object *obj)'),
    findProg: lib.func('bpf_program *bpf_object__find_program_by_name(bpf_object *obj, const char *name)'),
    findMap: lib.func('bpf_map *bpf_object__find_map_by_name(bpf_object *obj, const char *name)'),
    mapFd: lib.func('int bpf_map__fd(bpf_map *map)'),
    progFd: lib.func('int bpf_program__fd(bpf_program *prog)'),
    attachCgroup: lib.func('bpf_link *bpf_program__attach_cgroup(bpf_program *prog, int cgroup_fd)'),
    attachNetns: lib.func('bpf_link *bpf_program__attach_netns(bpf_program *prog, int netns_fd)'),
    linkPin: lib.func('int bpf_link__pin(bpf_link *link, const char *path)'),
    linkUnpin: lib.func('int bpf_link__unpin(bpf_link *link)'),
    linkOpen: lib.func('bpf_link *bpf_link__open(const char *path)'),
    linkFd: lib.func('int bpf_link__fd(bpf_link *link)'),
    linkDetach: lib.func('int bpf_link__detach(bpf_link *link)'),
    linkDestroy: lib.func('int bpf_link__destroy(bpf_link *link)'),
    linkDisconnect: lib.func('void bpf_link__disconnect(bpf_link *link)'),
    objGet: lib.func('int bpf_obj_get(const char *path)'),
    linkById: lib.func('int bpf_link_get_fd_by_id(uint32_t id)'),
    progById: lib.func('int bpf_prog_get_fd_by_id(uint32_t id)'),
    objPin: lib.func('int bpf_obj_pin(int fd, const char *path)'),
    objInfo: lib.func('int bpf_obj_get_info_by_fd(int fd, void *info, void *len)'),
    lookup: lib.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
    update: lib.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
    del: lib.func('int bpf_map_delete_elem(int fd, const void *key)'),
    lookupDel: lib.func('int bpf_map_lookup_and_delete_elem(int fd, const void *key, void *value)'),
    nextKey: lib.func('int bpf_map_get_next_key(int fd, const void *key, void *next_key)'),
    ncpus: lib.func('int libbpf_num_possible_cpus(void)'),
    probeProg: lib.func('int libbpf_probe_bpf_prog_type(int prog_type, const void *opts)'),
    probeHelper: lib.func('int libbpf_probe_bpf_helper(int prog_type, int helper_id, const void *opts)'),
    setPrint: lib.func('void *libbpf_set_print(weft_libbpf_print_fn *fn)'),
  };

  // libbpf reports everything (warnings, the verifier log on a failed load) through one global print
  // callback. Route it into the active capture so errors can carry it; outside a capture, drop it.
  const c = libc();
  const onPrint = (level: number, fmt: unknown, args: unknown): number => {
    if (!sink || level > LIBBPF_INFO) return 0; // debug output would bury the verifier log
    printBuf ??= Buffer.alloc(PRINT_BUF_SIZE);
    const n = c.vsnprintf(printBuf, PRINT_BUF_SIZE, fmt, args);
    if (n > 0) sink.push(printBuf.toString('utf8', 0, Math.min(n, PRINT_BUF_SIZE - 1)));
    return 0;
  };
  f.setPrint(koffi.register(onPrint, koffi.pointer(PrintFn)));

  cached = {
    openOptsSize: koffi.sizeof(OpenOptsType),
    bpf_object__open_file: (p, o) => f.open(p, o),
    bpf_object__load: (o) => f.load(o) as number,
    bpf_object__close: (o) => void f.close(o),
    bpf_object__find_program_by_name: (o, n) => f.findProg(o, n),
    bpf_object__find_map_by_name: (o, n) => f.findMap(o, n),
    bpf_map__fd: (m) => f.mapFd(m) as number,
    bpf_program__fd: (p) => f.progFd(p) as number,
    bpf_program__attach_cgroup: (p, fd) => f.attachCgroup(p, fd),
    bpf_program__attach_netns: (p, fd) => f.attachNetns(p, fd),
    bpf_link__pin: (l, p) => f.linkPin(l, p) as number,
    bpf_link__unpin: (l) => f.linkUnpin(l) as number,
    bpf_link__open: (p) => f.linkOpen(p),
    bpf_link__fd: (l) => f.linkFd(l) as number,
    bpf_link__detach: (l) => f.linkDetach(l) as number,
    bpf_link__destroy: (l) => f.linkDestroy(l) as number,
    bpf_link__disconnect: (l) => void f.linkDisconnect(l),
    bpf_obj_get: (p) => f.objGet(p) as number,
    bpf_link_get_fd_by_id: (id) => f.linkById(id) as number,
    bpf_prog_get_fd_by_id: (id) => f.progById(id) as number,
    bpf_obj_pin: (fd, p) => f.objPin(fd, p) as number,
    bpf_obj_get_info_by_fd: (fd, info, len) => f.objInfo(fd, info, len) as number,
    bpf_map_lookup_elem: f.lookup as unknown as Libbpf['bpf_map_lookup_elem'],
    bpf_map_update_elem: f.update as unknown as Libbpf['bpf_map_update_elem'],
    bpf_map_delete_elem: f.del as unknown as Libbpf['bpf_map_delete_elem'],
    bpf_map_lookup_and_delete_elem: f.lookupDel as unknown as Libbpf['bpf_map_lookup_and_delete_elem'],
    bpf_map_get_next_key: f.nextKey as unknown as Libbpf['bpf_map_get_next_key'],
    libbpf_num_possible_cpus: () => f.ncpus() as number,
    libbpf_probe_bpf_prog_type: (t, o) => f.probeProg(t, o) as number,
    libbpf_probe_bpf_helper: (t, h, o) => f.probeHelper(t, h, o) as number,
    errno: () => koffi.errno(),
  };
  return cached;
}

/** Run fn while collecting libbpf's log output; returns fn's result and the log. Not re-entrant. */
export function captureLog<T>(fn: () => T): { result?: T; error?: unknown; log: string } {
  const prev = sink;
  const lines: string[] = [];
  sink = lines;
  try {
    return { result: fn(), log: lines.join('') };
  } catch (error) {
    return { error, log: lines.join('') };
  } finally {
    sink = prev;
  }
}
