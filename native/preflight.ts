// Can this machine run Weft's capture? Checks, in order, with an actionable error for the first failure:
// privileges, a cgroup v2 mount, bpffs at the pin directory (mounted on demand when we may), and kernel
// support for the program types and helpers the objects use.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

import { cgroup2Mount, readMounts, type MountEntry } from './cgroup.js';
import { CgroupError, PreflightError } from './errors.js';
import { libbpf } from './libbpf.js';
import { libc } from './libc.js';

export const DEFAULT_BPFFS = '/sys/fs/bpf';

const CAP_NET_ADMIN = 12n;
const CAP_SYS_ADMIN = 21n;
const CAP_BPF = 39n;

// enum bpf_prog_type / enum bpf_func_id values (stable kernel UAPI)
const PROG_TYPES = [
  { id: 8, name: 'cgroup_skb (inbound guard)' },
  { id: 13, name: 'sockops' },
  { id: 18, name: 'cgroup_sock_addr (connect4/connect6)' },
];
const HELPERS = [
  { prog: 18, id: 122, name: 'bpf_get_netns_cookie in cgroup/connect (Linux >= 5.8)' },
  { prog: 18, id: 80, name: 'bpf_get_current_cgroup_id in cgroup/connect' },
  { prog: 13, id: 46, name: 'bpf_get_socket_cookie in sockops (Linux >= 5.10)' },
  { prog: 8, id: 79, name: 'bpf_skb_cgroup_id in cgroup_skb' },
];

export interface PreflightOptions {
  /** the pin directory that will be used (must be on a bpffs) */
  pinDir: string;
  /** mount bpffs at /sys/fs/bpf when the pin dir is below it and nothing is mounted (default true) */
  mountBpffs?: boolean;
  /** skip the kernel probes (cheap, but they load tiny programs) */
  skipProbes?: boolean;
}

export interface PreflightReport {
  cgroup2Mount: string;
  bpffsMount: string;
  mountedBpffs: boolean;
}

function effectiveCaps(): bigint {
  const status = readFileSync('/proc/self/status', 'utf8');
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m ? BigInt('0x' + m[1]) : 0n;
}

const has = (caps: bigint, cap: bigint) => (caps & (1n << cap)) !== 0n;

/** The mount that holds `path` (longest matching mount point). */
export function mountOf(path: string, mounts: MountEntry[] = readMounts()): MountEntry | undefined {
  const p = resolve(path);
  let best: MountEntry | undefined;
  for (const m of mounts) {
    const t = m.target === '/' ? '/' : m.target.replace(/\/$/, '');
    if ((p === t || p.startsWith(t === '/' ? '/' : t + '/')) && (!best || t.length >= best.target.length)) best = m;
  }
  return best;
}

export function checkPrivileges(): void {
  const caps = effectiveCaps();
  const bpfOk = has(caps, CAP_BPF) || has(caps, CAP_SYS_ADMIN);
  if (!bpfOk || !has(caps, CAP_NET_ADMIN)) {
    const missing = [!bpfOk ? 'CAP_BPF (or CAP_SYS_ADMIN)' : '', !has(caps, CAP_NET_ADMIN) ? 'CAP_NET_ADMIN' : ''].filter(Boolean);
    throw new PreflightError(
      'privileges',
      `loading and attaching eBPF needs ${missing.join(' and ')}; run as root, or in Kubernetes give the agent container securityContext.capabilities.add: [BPF, NET_ADMIN, SYS_ADMIN] (or privileged: true)`,
      { details: { uid: process.getuid?.() } },
    );
  }
}

export function checkCgroup2(mounts: MountEntry[] = readMounts()): string {
  try {
    return cgroup2Mount(mounts);
  } catch (e) {
    throw new PreflightError('cgroup2', (e as CgroupError).message, { cause: e });
  }
}

/** Make sure `pinDir` is on a bpffs, mounting one at /sys/fs/bpf when allowed and needed. */
export function ensureBpffs(pinDir: string, mount = true): { mount: string; mounted: boolean } {
  const found = mountOf(pinDir);
  if (found?.fstype === 'bpf') return { mount: found.target, mounted: false };
  const underDefault = resolve(pinDir) === DEFAULT_BPFFS || resolve(pinDir).startsWith(DEFAULT_BPFFS + '/');
  if (!mount || !underDefault) {
    throw new PreflightError(
      'bpffs',
      `${pinDir} is not on a BPF file system (bpffs), so pinned maps and links cannot survive an agent restart; mount one: mount -t bpf bpf ${DEFAULT_BPFFS} (in Kubernetes: a hostPath volume for ${DEFAULT_BPFFS} with mountPropagation: Bidirectional)`,
    );
  }
  if (process.getuid?.() !== 0) {
    throw new PreflightError('bpffs', `no bpffs is mounted at ${DEFAULT_BPFFS} and only root may mount it; run: sudo mount -t bpf bpf ${DEFAULT_BPFFS}`);
  }
  if (!existsSync(DEFAULT_BPFFS)) mkdirSync(DEFAULT_BPFFS, { recursive: true });
  // another process may have mounted it while we looked; mounting twice would only stack a second bpffs
  if (mountOf(DEFAULT_BPFFS)?.fstype !== 'bpf') {
    const c = libc();
    if (c.mount('bpf', DEFAULT_BPFFS, 'bpf', 0, null) < 0) {
      throw new PreflightError('bpffs', `mounting bpffs at ${DEFAULT_BPFFS} failed; mount it yourself: mount -t bpf bpf ${DEFAULT_BPFFS}`, { errno: c.errno() });
    }
    // Remember that Weft mounted it, so the last one out (sandbox down, capture uninstall) can unmount it.
    mkdirSync(dirname(BPFFS_MARKER), { recursive: true });
    writeFileSync(BPFFS_MARKER, `${process.pid}\n`);
    return { mount: DEFAULT_BPFFS, mounted: true };
  }
  return { mount: DEFAULT_BPFFS, mounted: false };
}

/** Written when Weft mounts bpffs at /sys/fs/bpf itself; a bpffs someone else mounted is never unmounted. */
export const BPFFS_MARKER = '/run/weft/bpffs-mounted-by-weft';

/** What a fresh bpffs holds on its own (the kernel's preloaded iterators): not ours, gone with the mount. */
const KERNEL_ENTRIES = new Set(['progs.debug', 'maps.debug']);

/**
 * Unmounts the bpffs at /sys/fs/bpf when Weft mounted it (the marker) and nothing but the kernel's own
 * iterators is left on it: the machine is back as it was. Another sandbox's or agent's pins keep it mounted.
 * Returns true when it unmounted.
 */
export function releaseBpffs(): boolean {
  if (!existsSync(BPFFS_MARKER)) return false;
  const m = mountOf(DEFAULT_BPFFS);
  if (m?.fstype !== 'bpf' || m.target !== DEFAULT_BPFFS) {
    rmSync(BPFFS_MARKER, { force: true });
    return false;
  }
  if (readdirSync(DEFAULT_BPFFS).some((e) => !KERNEL_ENTRIES.has(e))) return false;
  if (libc().umount2(DEFAULT_BPFFS, 0) < 0) return false;
  rmSync(BPFFS_MARKER, { force: true });
  return true;
}

export function checkKernel(): void {
  const lib = libbpf();
  for (const t of PROG_TYPES) {
    const rc = lib.libbpf_probe_bpf_prog_type(t.id, null);
    if (rc !== 1) {
      throw new PreflightError('kernel', `this kernel cannot load ${t.name} programs; Weft capture needs Linux 5.10 or newer with CONFIG_BPF_SYSCALL, CONFIG_CGROUP_BPF and CONFIG_SOCK_CGROUP_DATA`, rc < 0 ? { errno: rc } : {});
    }
  }
  for (const h of HELPERS) {
    const rc = lib.libbpf_probe_bpf_helper(h.prog, h.id, null);
    if (rc !== 1) throw new PreflightError('kernel', `this kernel lacks ${h.name}; upgrade to Linux 5.14 or newer`, rc < 0 ? { errno: rc } : {});
  }
}

/** Run every check; returns where things are. Throws PreflightError for the first failed requirement. */
export function preflight(opts: PreflightOptions): PreflightReport {
  checkPrivileges();
  const cg = checkCgroup2();
  const bpffs = ensureBpffs(opts.pinDir, opts.mountBpffs ?? true);
  if (!opts.skipProbes) checkKernel();
  return { cgroup2Mount: cg, bpffsMount: bpffs.mount, mountedBpffs: bpffs.mounted };
}
