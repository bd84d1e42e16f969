// Typed wrappers over libbpf: objects (open + load, with the verifier log on failure), programs attached
// to cgroups as bpf_links, pinning, and maps with key/value codecs. Kernel-facing and synchronous; the
// callers (agent/redirect) decide what to load, where to attach and what to pin.
import { closeSync, constants as fsc, openSync, unlinkSync } from 'node:fs';

import type { Codec } from './codec.js';
import {
  BpfAttachError,
  BpfCodecError,
  BpfLoadError,
  BpfMapError,
  BpfNotFoundError,
  BpfPinError,
  errnoName,
} from './errors.js';
import { captureLog, libbpf, type Ptr } from './libbpf.js';
import { libc } from './libc.js';

const ENOENT = 2;

/** BPF_MAP_TYPE_* values this binding reads per-CPU. */
const PERCPU_MAP_TYPES = new Set([5 /* PERCPU_HASH */, 6 /* PERCPU_ARRAY */, 10 /* LRU_PERCPU_HASH */]);

export const BPF_ANY = 0n;
export const BPF_NOEXIST = 1n;
export const BPF_EXIST = 2n;

export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  name: string;
}

export function mapInfo(fd: number): MapInfo {
  const lib = libbpf();
  const info = Buffer.alloc(88); // struct bpf_map_info, first fields; the kernel fills what it knows
  const len = Buffer.alloc(4);
  len.writeUInt32LE(info.length);
  const rc = lib.bpf_obj_get_info_by_fd(fd, info, len);
  if (rc < 0) throw new BpfMapError(`cannot read map info of fd ${fd}`, { errno: rc });
  const nameEnd = info.indexOf(0, 24);
  return {
    type: info.readUInt32LE(0),
    id: info.readUInt32LE(4),
    keySize: info.readUInt32LE(8),
    valueSize: info.readUInt32LE(12),
    maxEntries: info.readUInt32LE(16),
    name: info.toString('utf8', 24, nameEnd < 0 || nameEnd > 40 ? 40 : nameEnd),
  };
}

export function possibleCpus(): number {
  const n = libbpf().libbpf_num_possible_cpus();
  if (n <= 0) throw new BpfMapError('cannot read the number of possible CPUs', { errno: n });
  return n;
}

export interface MapOpenOptions {
  /** take key and value sizes from the kernel (for byte-level inspection with a Buffer codec) */
  sizesFromKernel?: boolean;
}

/**
 * A map by file descriptor, with typed keys and values. `lookupInto` is the allocation-free path for hot
 * callers (the proxy's per-connection lookup): preallocated buffers, one FFI call.
 */
export class BpfMap<K, V> {
  readonly info: MapInfo;
  readonly perCpu: boolean;
  private readonly keyBuf: Buffer;
  private readonly valueBuf: Buffer;
  private closed = false;

  readonly key: Codec<K>;
  readonly value: Codec<V>;

  constructor(
    readonly fd: number,
    key: Codec<K>,
    value: Codec<V>,
    readonly label: string,
    private readonly ownsFd: boolean,
    opts: MapOpenOptions = {},
  ) {
    this.info = mapInfo(fd);
    this.perCpu = PERCPU_MAP_TYPES.has(this.info.type);
    if (opts.sizesFromKernel) {
      // inspection of a map whose layout the caller does not know: keys/values as raw bytes
      key = { ...key, size: this.info.keySize };
      value = { ...value, size: this.info.valueSize };
    }
    this.key = key;
    this.value = value;
    if (key.size !== this.info.keySize || (!this.perCpu && value.size !== this.info.valueSize) || (this.perCpu && value.size !== 8 * Math.ceil(this.info.valueSize / 8) && value.size !== this.info.valueSize)) {
      throw new BpfCodecError(
        `map ${label}: codec sizes key=${key.size} value=${value.size} do not match the kernel map (key=${this.info.keySize} value=${this.info.valueSize}); the committed BPF objects and agent/redirect/layout.ts disagree`,
      );
    }
    this.keyBuf = Buffer.alloc(key.size);
    this.valueBuf = Buffer.alloc(this.perCpu ? 8 * Math.ceil(this.info.valueSize / 8) * possibleCpus() : value.size);
  }

  /** Open a map pinned in bpffs. Throws BpfPinError (ENOENT when the pin does not exist). */
  static openPinned<K, V>(path: string, key: Codec<K>, value: Codec<V>, opts: MapOpenOptions = {}): BpfMap<K, V> {
    const fd = libbpf().bpf_obj_get(path);
    if (fd < 0) throw new BpfPinError(`cannot open pinned map ${path}`, { errno: fd });
    try {
      return new BpfMap(fd, key, value, path, true, opts);
    } catch (e) {
      libc().close(fd);
      throw e;
    }
  }

  lookup(key: K): V | undefined {
    this.key.encode(key, this.keyBuf, 0);
    if (this.perCpu) throw new BpfMapError(`map ${this.label} is per-CPU: use lookupPerCpu`);
    return this.lookupInto(this.keyBuf, this.valueBuf) ? this.value.decode(this.valueBuf, 0) : undefined;
  }

  /** Raw lookup: true and valueBuf filled when found, false when the key is absent. */
  lookupInto(keyBuf: Buffer, valueBuf: Buffer): boolean {
    const rc = libbpf().bpf_map_lookup_elem(this.fd, keyBuf, valueBuf);
    if (rc === 0) return true;
    if (rc === -ENOENT) return false;
    throw new BpfMapError(`lookup in map ${this.label} failed`, { errno: rc });
  }

  /** Raw lookup that also removes the entry (one syscall): true and valueBuf filled when it was there. */
  lookupAndDeleteInto(keyBuf: Buffer, valueBuf: Buffer): boolean {
    const rc = libbpf().bpf_map_lookup_and_delete_elem(this.fd, keyBuf, valueBuf);
    if (rc === 0) return true;
    if (rc === -ENOENT) return false;
    throw new BpfMapError(`lookup-and-delete in map ${this.label} failed`, { errno: rc });
  }

  /** Every CPU's value for `key` (per-CPU maps), or undefined when the key is absent. */
  lookupPerCpu(key: K): V[] | undefined {
    if (!this.perCpu) throw new BpfMapError(`map ${this.label} is not per-CPU`);
    this.key.encode(key, this.keyBuf, 0);
    if (!this.lookupInto(this.keyBuf, this.valueBuf)) return undefined;
    const stride = 8 * Math.ceil(this.info.valueSize / 8);
    const out: V[] = [];
    for (let off = 0; off < this.valueBuf.length; off += stride) out.push(this.value.decode(this.valueBuf, off));
    return out;
  }

  update(key: K, value: V, flags: bigint = BPF_ANY): void {
    if (this.perCpu) throw new BpfMapError(`map ${this.label} is per-CPU: updating it from userspace is not supported`);
    const k = Buffer.alloc(this.key.size);
    const v = Buffer.alloc(this.value.size);
    this.key.encode(key, k, 0);
    this.value.encode(value, v, 0);
    const rc = libbpf().bpf_map_update_elem(this.fd, k, v, flags);
    if (rc < 0) {
      const hint = rc === -7 /* E2BIG */ || rc === -28 /* ENOSPC */ ? `; the map holds at most ${this.info.maxEntries} entries` : '';
      throw new BpfMapError(`update of map ${this.label} failed${hint}`, { errno: rc });
    }
  }

  /** Delete `key`; false when it was not there. */
  delete(key: K): boolean {
    const k = Buffer.alloc(this.key.size);
    this.key.encode(key, k, 0);
    const rc = libbpf().bpf_map_delete_elem(this.fd, k);
    if (rc === 0) return true;
    if (rc === -ENOENT) return false;
    throw new BpfMapError(`delete from map ${this.label} failed`, { errno: rc });
  }

  /** Snapshot of the keys. Keys are collected first, so callers may delete while walking the result. */
  keys(): K[] {
    const lib = libbpf();
    const out: K[] = [];
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.key.size);
      const rc = lib.bpf_map_get_next_key(this.fd, prev, next);
      if (rc === -ENOENT) break;
      if (rc < 0) throw new BpfMapError(`iterating map ${this.label} failed`, { errno: rc });
      out.push(this.key.decode(next, 0));
      prev = next;
      if (out.length > this.info.maxEntries) break; // a concurrently changing hash can restart the walk
    }
    return out;
  }

  /** Snapshot of the entries (non-per-CPU maps); entries deleted meanwhile are skipped. */
  entries(): Array<[K, V]> {
    const out: Array<[K, V]> = [];
    for (const k of this.keys()) {
      const v = this.lookup(k);
      if (v !== undefined) out.push([k, v]);
    }
    return out;
  }

  count(): number {
    return this.keys().length;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsFd) libc().close(this.fd);
  }
}

const LINK_TYPE_CGROUP = 3; // BPF_LINK_TYPE_CGROUP
const LINK_TYPE_NETNS = 5; // BPF_LINK_TYPE_NETNS

export interface LinkInfo {
  type: number;
  id: number;
  progId: number;
  cgroupId?: bigint;
  /** netns links: the inode of the namespace (0 once it is gone) */
  netnsIno?: number;
  attachType?: number;
}

/** A program attached to a cgroup through a bpf_link. */
export class BpfLink {
  private destroyed = false;
  private constructor(
    private readonly ptr: Ptr,
    readonly label: string,
  ) {}

  static fromPtr(ptr: Ptr, label: string): BpfLink {
    return new BpfLink(ptr, label);
  }

  /** Open a link pinned in bpffs (it stays attached as long as the pin exists). */
  static openPinned(path: string): BpfLink {
    const lib = libbpf();
    const ptr = lib.bpf_link__open(path);
    if (!ptr) {
      const errno = lib.errno();
      throw new BpfPinError(`cannot open pinned link ${path}`, { errno });
    }
    return new BpfLink(ptr, path);
  }

  get fd(): number {
    return libbpf().bpf_link__fd(this.ptr);
  }

  /** What the kernel says about this link: for a cgroup link, the cgroup id (0 once the cgroup is gone). */
  info(): LinkInfo {
    const info = Buffer.alloc(64); // struct bpf_link_info: type, id, prog_id, then the per-type union at 16
    const len = Buffer.alloc(4);
    len.writeUInt32LE(info.length);
    const rc = libbpf().bpf_obj_get_info_by_fd(this.fd, info, len);
    if (rc < 0) throw new BpfAttachError(`cannot read link info of ${this.label}`, { errno: rc });
    const type = info.readUInt32LE(0);
    return {
      type,
      id: info.readUInt32LE(4),
      progId: info.readUInt32LE(8),
      ...(type === LINK_TYPE_CGROUP ? { cgroupId: info.readBigUInt64LE(16), attachType: info.readUInt32LE(24) } : {}),
      ...(type === LINK_TYPE_NETNS ? { netnsIno: info.readUInt32LE(16), attachType: info.readUInt32LE(20) } : {}),
    };
  }

  pin(path: string): void {
    const rc = libbpf().bpf_link__pin(this.ptr, path);
    if (rc < 0) throw new BpfPinError(`cannot pin link ${this.label} at ${path}; is bpffs mounted there?`, { errno: rc });
  }

  /** Detach the program from its cgroup now, even if the link is pinned. */
  detach(): void {
    const rc = libbpf().bpf_link__detach(this.ptr);
    if (rc < 0) throw new BpfAttachError(`cannot detach link ${this.label}`, { errno: rc });
  }

  /**
   * Release this process's handle (closes the link fd). A pinned link stays attached: the pin holds its
   * own reference. An unpinned link is detached by this, as the kernel drops its last reference.
   */
  close(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    libbpf().bpf_link__destroy(this.ptr);
  }
}

export interface OpenObjectOptions {
  /** maps declared with LIBBPF_PIN_BY_NAME are pinned (or re-used) under this bpffs directory */
  pinRoot?: string;
}

/** A loaded BPF object file (one .o). Close it when done; pinned maps and links outlive it. */
export class BpfObject {
  private closed = false;
  private constructor(
    private readonly ptr: Ptr,
    readonly path: string,
  ) {}

  /** Open and load `path` into the kernel. Throws BpfLoadError carrying libbpf's and the verifier's log. */
  static load(path: string, opts: OpenObjectOptions = {}): BpfObject {
    const lib = libbpf();
    const { result, error, log } = captureLog(() => {
      const ptr = lib.bpf_object__open_file(path, {
        sz: lib.openOptsSize,
        object_name: null,
        relaxed_maps: false,
        pin_root_path: opts.pinRoot ?? null,
        _pad: 0,
        kconfig: null,
        btf_custom_path: null,
        kernel_log_buf: null,
        kernel_log_size: 0,
        kernel_log_level: 0,
      });
      if (!ptr) return { stage: 'open', errno: lib.errno() } as const;
      const rc = lib.bpf_object__load(ptr);
      if (rc < 0) {
        lib.bpf_object__close(ptr);
        return { stage: 'load', errno: rc } as const;
      }
      return { ptr };
    });
    if (error) throw new BpfLoadError(`loading BPF object ${path} failed`, log, { cause: error });
    const r = result!;
    if ('stage' in r) {
      const what = r.stage === 'open' ? 'cannot open BPF object' : 'the kernel refused BPF object';
      const hint = Math.abs(r.errno ?? 0) === 1 ? ' (EPERM: run as root or grant CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN)' : '';
      throw new BpfLoadError(`${what} ${path}${hint}`, log, { errno: r.errno });
    }
    return new BpfObject(r.ptr, path);
  }

  private program(name: string): Ptr {
    const p = libbpf().bpf_object__find_program_by_name(this.ptr, name);
    if (!p) throw new BpfNotFoundError(`program ${name} is not in ${this.path}; rebuild the objects with npm run build:bpf`);
    return p;
  }

  /** The fd of a map of this object (owned by the object: valid until close()). */
  mapFd(name: string): number {
    const lib = libbpf();
    const m = lib.bpf_object__find_map_by_name(this.ptr, name);
    if (!m) throw new BpfNotFoundError(`map ${name} is not in ${this.path}; rebuild the objects with npm run build:bpf`);
    return lib.bpf_map__fd(m);
  }

  /** Attach program `name` to the cgroup directory `cgroupPath` as a bpf_link. */
  attachCgroup(name: string, cgroupPath: string): BpfLink {
    const lib = libbpf();
    const prog = this.program(name);
    let cgFd: number;
    try {
      cgFd = openSync(cgroupPath, fsc.O_RDONLY | fsc.O_DIRECTORY);
    } catch (e) {
      throw new BpfAttachError(`cannot open cgroup ${cgroupPath} to attach ${name}`, { cause: e, errno: (e as { errno?: number }).errno });
    }
    try {
      const link = lib.bpf_program__attach_cgroup(prog, cgFd);
      if (!link) {
        const errno = lib.errno();
        throw new BpfAttachError(`cannot attach ${name} to cgroup ${cgroupPath} (${errnoName(errno)}); the cgroup must be a cgroup v2 directory and the kernel must support BPF links for this program type`, { errno });
      }
      return BpfLink.fromPtr(link, `${name}@${cgroupPath}`);
    } finally {
      closeSync(cgFd);
    }
  }

  /**
   * Attach program `name` (an sk_lookup program) to the network namespace at `nsPath` as a bpf_link. The
   * link is not pinned by this call: closing it detaches the program.
   */
  attachNetns(name: string, nsPath: string): BpfLink {
    const lib = libbpf();
    const prog = this.program(name);
    let nsFd: number;
    try {
      nsFd = openSync(nsPath, fsc.O_RDONLY);
    } catch (e) {
      throw new BpfAttachError(`cannot open network namespace ${nsPath} to attach ${name}`, { cause: e, errno: (e as { errno?: number }).errno });
    }
    try {
      const link = lib.bpf_program__attach_netns(prog, nsFd);
      if (!link) {
        const errno = lib.errno();
        throw new BpfAttachError(`cannot attach ${name} to network namespace ${nsPath} (${errnoName(errno)}); the kernel must support sk_lookup programs (Linux 5.9+)`, { errno });
      }
      return BpfLink.fromPtr(link, `${name}@${nsPath}`);
    } finally {
      closeSync(nsFd);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libbpf().bpf_object__close(this.ptr);
  }
}

/** Whether a BPF link with this id still exists in the kernel (for checks after an uninstall). */
export function linkExists(id: number): boolean {
  const lib = libbpf();
  const fd = lib.bpf_link_get_fd_by_id(id);
  if (fd >= 0) {
    libc().close(fd);
    return true;
  }
  if (fd === -ENOENT) return false;
  throw new BpfAttachError(`cannot look up link id ${id}`, { errno: fd });
}

/** Remove a pin from bpffs; false when it did not exist. */
export function unpin(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new BpfPinError(`cannot remove pin ${path}`, { cause: e, errno: (e as { errno?: number }).errno });
  }
}
