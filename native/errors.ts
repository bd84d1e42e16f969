// Typed errors of the kernel binding. Each carries a stable WEFT_ERR_* code (docs/errors.md), the errno
// name when the kernel refused something, and a message that says what to do.
import { constants } from 'node:os';

import { WeftError } from '../common/errors.js';

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** "EPERM" for 1; "errno 999" for unknown numbers. Accepts -errno as libbpf returns it. */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  return ERRNO_NAMES.get(n) ?? `errno ${n}`;
}

interface NativeErrorOptions {
  errno?: number;
  /** appended after the errno name (long diagnostics such as a verifier log) */
  suffix?: string;
  cause?: unknown;
  details?: Record<string, unknown>;
}

/** Base of every error raised by native/: the errno (positive) when a syscall or libbpf call failed. */
export class NativeError extends WeftError {
  readonly errno: number | undefined;
  constructor(code: string, message: string, opts: NativeErrorOptions = {}) {
    const errno = opts.errno === undefined ? undefined : Math.abs(opts.errno);
    super(code, (errno === undefined ? message : `${message} (${errnoName(errno)})`) + (opts.suffix ?? ''), {
      cause: opts.cause,
      details: { ...opts.details, ...(errno !== undefined ? { errno: errnoName(errno) } : {}) },
    });
    this.errno = errno;
  }
}

/** libbpf.so.1 or libc could not be loaded through koffi. */
export class NativeLibraryError extends NativeError {
  constructor(message: string, opts: NativeErrorOptions = {}) {
    super('WEFT_ERR_NATIVE_LIBRARY', message, opts);
  }
}

/** Opening or loading a BPF object failed; `log` holds libbpf's output including the verifier log. */
export class BpfLoadError extends NativeError {
  readonly log: string;
  constructor(message: string, log: string, opts: NativeErrorOptions = {}) {
    super('WEFT_ERR_BPF_LOAD', message, { ...opts, suffix: log ? `\n--- libbpf / verifier log ---\n${log.trimEnd()}` : '' });
    this.log = log;
  }
}

/** A program could not be attached to (or detached from) a cgroup. */
export class BpfAttachError extends NativeError {
  constructor(message: string, opts: NativeErrorOptions = {}) {
    super('WEFT_ERR_BPF_ATTACH', message, opts);
  }
}

/** A map operation (lookup/update/delete/iterate) failed for a reason other than "no such key". */
export class BpfMapError extends NativeError {
  constructor(message: string, opts: NativeErrorOptions = {}) {
    super('WEFT_ERR_BPF_MAP', message, opts);
  }
}

/** Pinning, unpinning or opening a pinned object in bpffs failed. */
export class BpfPinError extends NativeError {
  constructor(message: string, opts: NativeErrorOptions = {}) {
    super('WEFT_ERR_BPF_PIN', message, opts);
  }
}

/** A program or map name is not in the object (a mismatch between code and the committed .o). */
export class BpfNotFoundError extends NativeError {
  constructor(message: string, opts: NativeErrorOptions = {}) {
    super('WEFT_ERR_BPF_NOT_FOUND', message, opts);
  }
}

/** A key or value buffer does not have the map's size, or a codec was given a bad value. */
export class BpfCodecError extends NativeError {
  constructor(message: string, opts: NativeErrorOptions = {}) {
    super('WEFT_ERR_BPF_CODEC', message, opts);
  }
}

/** cgroup v2 lookups and changes (mount, id, create, remove). */
export class CgroupError extends NativeError {
  constructor(message: string, opts: NativeErrorOptions = {}) {
    super('WEFT_ERR_CGROUP', message, opts);
  }
}

/** Network namespace operations (setns, netns cookie). */
export class NetnsError extends NativeError {
  constructor(message: string, opts: NativeErrorOptions = {}) {
    super('WEFT_ERR_NETNS', message, opts);
  }
}

export type PreflightCheck = 'privileges' | 'cgroup2' | 'bpffs' | 'kernel';
const PREFLIGHT_CODES: Record<PreflightCheck, string> = {
  privileges: 'WEFT_ERR_PREFLIGHT_PRIVILEGES',
  cgroup2: 'WEFT_ERR_PREFLIGHT_CGROUP2',
  bpffs: 'WEFT_ERR_PREFLIGHT_BPFFS',
  kernel: 'WEFT_ERR_PREFLIGHT_KERNEL',
};

/** The machine cannot run Weft's capture: the message says which requirement failed and how to fix it. */
export class PreflightError extends NativeError {
  readonly check: PreflightCheck;
  constructor(check: PreflightCheck, message: string, opts: NativeErrorOptions = {}) {
    super(PREFLIGHT_CODES[check], message, opts);
    this.check = check;
  }
}
