// RedirectManager: the agent's handle on the kernel half of the data path. It attaches the capture
// programs at the cgroup subtree that holds the node's pods, keeps the maps (enrolled pods, mesh
// destinations, guard modes) equal to a desired snapshot, and answers the proxy's per-connection
// "where was this going, and who sent it?" (ConnectionLookup).
import type { ConnectionLookup, OriginalDestination, SocketAddress } from '../../common/capture.js';
import { WeftConfigError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { PORTS, PROXY_SO_MARK } from '../../common/ports.js';
import { BpfMap } from '../../native/bpf.js';
import { u32, u64, ipFamily } from '../../native/codec.js';
import { cgroup2Mount, isInsideCgroup2, isRootCgroup, readMounts } from '../../native/cgroup.js';
import { currentNetnsCookie } from '../../native/netns.js';
import { preflight } from '../../native/preflight.js';
import type { DesiredRedirect, MeshDestination } from './desired.js';
import { CaptureError } from './errors.js';
import {
  GUARD_MODE,
  MAPS,
  POD_FLAGS,
  TUPLE_SIZE,
  addrCodec,
  configCodec,
  destCodec,
  flagsCodec,
  origCodec,
  podCodec,
  podPortCodec,
  tupleCodec,
  type CaptureConfig,
  type CounterName,
  type GuardMode,
  type OrigEntry,
  type PodEntry,
  type PodPortKey,
  type DestKey,
  type TupleKey,
} from './layout.js';
import { sumCounters } from './status.js';
import { DEFAULT_OBJECTS_DIR, ensureAttached, ensureMaps, uninstallPins, type AttachReport, type UninstallReport } from './pins.js';

export interface ProxyAddress {
  /** the node proxy's outbound listener, IPv4 (needed to capture IPv4 connections) */
  ipv4?: string;
  /** the node proxy's outbound listener, IPv6 (needed to capture IPv6 connections) */
  ipv6?: string;
  /** default 15001 */
  port?: number;
}

export interface RedirectManagerOptions {
  /** bpffs directory of this instance, e.g. /sys/fs/bpf/weft/<instance> */
  pinDir: string;
  /** cgroup v2 directory whose subtree holds the pods; programs are attached here (never the root cgroup) */
  cgroupRoot: string;
  proxy: ProxyAddress;
  logger: Logger;
  /** netns cookie of the namespace the proxy runs in (default: this process's): its sockets are never rewritten */
  hostNetnsCookie?: bigint;
  /** SO_MARK of the proxy's own sockets (default 0x539) */
  proxyMark?: number;
  /** source addresses (besides the proxy addresses) the inbound guard accepts plaintext SYNs from */
  guardSources?: string[];
  /** directory with the compiled objects (default: the committed bpf/) */
  objectsDir?: string;
  /** how often closed, never-consumed records are swept (default 5000 ms; 0 = only when sweep() is called) */
  sweepIntervalMs?: number;
  /** how long a closed record stays for a late proxy lookup before it is swept (default 10000 ms) */
  sweepGraceMs?: number;
}

export interface EnrolledPod {
  cgroupId: bigint;
  uid: string;
  mode: GuardMode;
  /** PeerAuthentication portLevelMtls: modes of ports that differ from the pod's */
  ports?: { port: number; mode: GuardMode }[];
  /** weft.io/fail-mode open: while the proxy is not serving its connections go direct (never when STRICT) */
  failOpen?: boolean;
}

/** weft_pod.flags for a pod */
function podFlags(pod: EnrolledPod): number {
  return ((pod.ports?.length ?? 0) > 0 ? POD_FLAGS.portModes : 0) | (pod.failOpen ? POD_FLAGS.failOpen : 0);
}

export interface ReconcileResult {
  enrolled: number;
  unenrolled: number;
  modeChanged: number;
  destinationsAdded: number;
  destinationsRemoved: number;
}

export type RedirectCounters = Record<CounterName, bigint> & { userLookupMisses: bigint };

export interface MapEntryCounts {
  pods: number;
  destinations: number;
  origByCookie: number;
  origByTuple: number;
}

function modeName(mode: number): GuardMode {
  return (Object.entries(GUARD_MODE).find(([, v]) => v === mode)?.[0] as GuardMode | undefined) ?? 'PERMISSIVE';
}

const destId = (d: DestKey) => `${d.ip}|${d.port}`;

/** max_entries of weft_dests (bpf/lib/maps.h) */
const MAX_DESTINATIONS = 65_536;

export class RedirectManager implements ConnectionLookup {
  private readonly config: BpfMap<number, CaptureConfig>;
  private readonly pods: BpfMap<bigint, PodEntry>;
  private readonly dests: BpfMap<DestKey, number>;
  private readonly origByCookie: BpfMap<bigint, OrigEntry>;
  private readonly origByTuple: BpfMap<TupleKey, OrigEntry>;
  private readonly guardSources: BpfMap<string, number>;
  private readonly podPorts: BpfMap<PodPortKey, number>;
  private readonly proxySyn: BpfMap<TupleKey, number>;
  private readonly counters: BpfMap<number, bigint>;
  private readonly alive: BpfMap<number, bigint>;
  private readonly uids = new Map<bigint, string>();
  /** in-memory mirror of weft_dests by destId (undefined: read it from the kernel first) */
  private dests_: Map<string, DestKey> | undefined;
  private readonly lookupKey = Buffer.alloc(TUPLE_SIZE);
  private readonly lookupValue = Buffer.alloc(origCodec.size);
  private userLookupMisses = 0n;
  private closed = false;
  private sweeper: NodeJS.Timeout | undefined;

  private constructor(
    readonly pinDir: string,
    readonly cgroupRoot: string,
    readonly attach: AttachReport,
    private readonly logger: Logger,
    private readonly objectsDir: string,
  ) {
    const open = <K, V>(name: string, k: import('../../native/codec.js').Codec<K>, v: import('../../native/codec.js').Codec<V>) =>
      BpfMap.openPinned(`${pinDir}/${name}`, k, v);
    this.config = open(MAPS.config, u32, configCodec);
    this.pods = open(MAPS.pods, u64, podCodec);
    this.dests = open(MAPS.dests, destCodec, flagsCodec);
    this.origByCookie = open(MAPS.origByCookie, u64, origCodec);
    this.origByTuple = open(MAPS.origByTuple, tupleCodec, origCodec);
    this.guardSources = open(MAPS.guardSources, addrCodec, flagsCodec);
    this.podPorts = open(MAPS.podPorts, podPortCodec, u32);
    this.proxySyn = open(MAPS.proxySyn, tupleCodec, flagsCodec);
    this.counters = open(MAPS.counters, u32, u64);
    this.alive = open(MAPS.alive, u32, u64);
  }

  /**
   * Check the machine, attach (or re-use the pinned) programs at `cgroupRoot`, and write the proxy
   * configuration. Pods and destinations already in the pinned maps are kept until the next reconcile.
   */
  static open(opts: RedirectManagerOptions): RedirectManager {
    const logger = opts.logger.child('redirect');
    const pf = preflight({ pinDir: opts.pinDir });
    if (pf.mountedBpffs) logger.info('mounted bpffs', { at: pf.bpffsMount });
    // the cgroup2 mount that holds the attach point (a node may have several, e.g. an overmount in a container)
    const mount = cgroup2Mount(readMounts(), opts.cgroupRoot);
    if (isRootCgroup(opts.cgroupRoot, mount)) {
      throw new CaptureError('WEFT_ERR_CAPTURE_ROOT_CGROUP', `refusing to attach at the machine's root cgroup ${opts.cgroupRoot}: capture attaches only at the subtree that holds pods (Kubernetes: the kubepods slice; sandbox: its own cgroup)`);
    }
    if (!isInsideCgroup2(opts.cgroupRoot, mount)) {
      throw new WeftConfigError('cgroupRoot', `${opts.cgroupRoot} is not inside the cgroup v2 hierarchy mounted at ${mount}`);
    }
    const cfg = RedirectManager.captureConfig(opts);
    const attach = ensureAttached(opts.pinDir, opts.cgroupRoot, opts.objectsDir ?? DEFAULT_OBJECTS_DIR, logger);
    const m = new RedirectManager(opts.pinDir, opts.cgroupRoot, attach, logger, opts.objectsDir ?? DEFAULT_OBJECTS_DIR);
    try {
      m.config.update(0, cfg);
      m.setGuardSources([...[cfg.proxyIpv4, cfg.proxyIpv6].filter((x): x is string => !!x), ...(opts.guardSources ?? [])]);
    } catch (e) {
      m.close();
      throw e;
    }
    if ((opts.sweepIntervalMs ?? 5_000) > 0) m.startSweeping(opts.sweepIntervalMs ?? 5_000, opts.sweepGraceMs ?? 10_000);
    logger.info('capture ready', { pinDir: opts.pinDir, cgroupRoot: opts.cgroupRoot, attached: attach.attached, reused: attach.reused });
    return m;
  }

  private static captureConfig(opts: RedirectManagerOptions): CaptureConfig {
    const { ipv4, ipv6, port = PORTS.outbound } = opts.proxy;
    if (!ipv4 && !ipv6) throw new WeftConfigError('proxy', 'give the node proxy outbound address (ipv4 and/or ipv6)');
    if (ipv4 && ipFamily(ipv4) !== 4) throw new WeftConfigError('proxy.ipv4', `"${ipv4}" is not an IPv4 address`);
    if (ipv6 && ipFamily(ipv6) !== 6) throw new WeftConfigError('proxy.ipv6', `"${ipv6}" is not an IPv6 address`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new WeftConfigError('proxy.port', `${port} is not a TCP port`);
    return {
      ...(ipv4 ? { proxyIpv4: ipv4 } : {}),
      ...(ipv6 ? { proxyIpv6: ipv6 } : {}),
      proxyPort: port,
      proxyMark: opts.proxyMark ?? PROXY_SO_MARK,
      hostNetnsCookie: opts.hostNetnsCookie ?? currentNetnsCookie(),
    };
  }

  // ---- pods -------------------------------------------------------------------------------------

  enroll(pod: EnrolledPod): void {
    // per-port modes first, then the flag that makes the guard read them: never a flag without its ports
    const ports = pod.ports ?? [];
    const want = new Map(ports.map((p) => [p.port, GUARD_MODE[p.mode]]));
    for (const k of this.podPorts.keys()) if (k.cgroupId === pod.cgroupId && !want.has(k.port)) this.podPorts.delete(k);
    for (const [port, mode] of want) this.podPorts.update({ cgroupId: pod.cgroupId, port }, mode);
    this.pods.update(pod.cgroupId, { mode: GUARD_MODE[pod.mode], flags: podFlags(pod) });
    this.uids.set(pod.cgroupId, pod.uid);
  }

  /** False when the cgroup was not enrolled. */
  unenroll(cgroupId: bigint): boolean {
    this.uids.delete(cgroupId);
    const was = this.pods.delete(cgroupId);
    for (const k of this.podPorts.keys()) if (k.cgroupId === cgroupId) this.podPorts.delete(k);
    return was;
  }

  enrolled(): EnrolledPod[] {
    const ports = new Map<bigint, { port: number; mode: GuardMode }[]>();
    for (const [k, v] of this.podPorts.entries()) ports.set(k.cgroupId, [...(ports.get(k.cgroupId) ?? []), { port: k.port, mode: modeName(v) }]);
    return this.pods.entries().map(([cgroupId, v]) => ({
      cgroupId,
      uid: this.uids.get(cgroupId) ?? '',
      mode: modeName(v.mode),
      ...(ports.has(cgroupId) ? { ports: ports.get(cgroupId)!.sort((a, b) => a.port - b.port) } : {}),
      ...((v.flags ?? 0) & POD_FLAGS.failOpen ? { failOpen: true } : {}),
    }));
  }

  // ---- destinations -----------------------------------------------------------------------------

  /**
   * Replace the set of mesh destinations with `dests` (port 0 = every port of that address), by diff
   * against an in-memory mirror of the map (read from the kernel once, and again after forgetMirror()), so
   * a config version costs syscalls for what changed, not a walk of 65,536 entries. Never half applied: a
   * set that would not fit is refused before anything changes, and an update the kernel refuses midway is
   * rolled back before the error is thrown (the config is then NACKed with it).
   */
  setDestinations(dests: MeshDestination[]): { added: number; removed: number } {
    const want = new Map(dests.map((d) => [destId(d), d]));
    for (const d of dests) destCodec.encode(d, Buffer.alloc(destCodec.size)); // validate all before changing any
    const have = this.destMirror();
    const gone = [...have].filter(([id]) => !want.has(id)).map(([, d]) => d);
    const fresh = [...want].filter(([id]) => !have.has(id)).map(([, d]) => d);
    if (have.size - gone.length + fresh.length > MAX_DESTINATIONS) {
      throw new CaptureError('WEFT_ERR_CAPTURE_FULL', `the mesh has ${want.size} captured destinations (Service VIP ports and meshed pod ports); the kernel map holds ${MAX_DESTINATIONS}: nothing was changed, the config is refused`);
    }
    const removed: MeshDestination[] = [];
    const added: MeshDestination[] = [];
    try {
      for (const d of gone) {
        this.dests.delete(d);
        have.delete(destId(d));
        removed.push(d);
      }
      for (const d of fresh) {
        this.dests.update(d, 0);
        have.set(destId(d), d);
        added.push(d);
      }
    } catch (e) {
      // put the map back as it was, so the proxy and the kernel keep agreeing on the old config
      for (const d of added) {
        this.dests.delete(d);
        have.delete(destId(d));
      }
      for (const d of removed) {
        this.dests.update(d, 0);
        have.set(destId(d), d);
      }
      throw e;
    }
    return { added: added.length, removed: removed.length };
  }

  /** The mirror of weft_dests, read from the kernel when there is none. */
  private destMirror(): Map<string, DestKey> {
    if (!this.dests_) this.dests_ = new Map(this.dests.keys().map((d) => [destId(d), d]));
    return this.dests_;
  }

  /** The next reconcile reads weft_dests from the kernel again (the audit: something may have changed it behind our back). */
  forgetMirror(): void {
    this.dests_ = undefined;
  }

  destinations(): MeshDestination[] {
    return [...this.destMirror().values()];
  }

  setGuardSources(ips: string[]): void {
    const want = new Set(ips);
    for (const ip of ips) addrCodec.encode(ip, Buffer.alloc(addrCodec.size));
    for (const have of this.guardSources.keys()) if (!want.delete(have)) this.guardSources.delete(have);
    for (const ip of want) this.guardSources.update(ip, 0);
  }

  /**
   * Make the maps equal to `desired`. Idempotent; reads the maps themselves (not memory), so it is correct
   * after a restart. Inputs are validated before anything changes.
   */
  reconcile(desired: DesiredRedirect): ReconcileResult {
    for (const p of desired.pods) {
      if (!(p.mode in GUARD_MODE)) throw new WeftConfigError(`pod ${p.uid}`, `mode ${String(p.mode)} is not STRICT, PERMISSIVE or DISABLE`);
      for (const pp of p.ports ?? []) {
        if (!(pp.mode in GUARD_MODE)) throw new WeftConfigError(`pod ${p.uid} port ${pp.port}`, `mode ${String(pp.mode)} is not STRICT, PERMISSIVE or DISABLE`);
        podPortCodec.encode({ cgroupId: p.cgroupId, port: pp.port }, Buffer.alloc(podPortCodec.size));
      }
    }
    for (const d of desired.destinations) destCodec.encode(d, Buffer.alloc(destCodec.size));
    const result: ReconcileResult = { enrolled: 0, unenrolled: 0, modeChanged: 0, destinationsAdded: 0, destinationsRemoved: 0 };
    const want = new Map(desired.pods.map((p) => [p.cgroupId, p]));
    for (const [id, v] of this.pods.entries()) {
      const p = want.get(id);
      if (!p) {
        this.unenroll(id);
        result.unenrolled++;
        continue;
      }
      if (v.mode !== GUARD_MODE[p.mode] || (v.flags ?? 0) !== podFlags(p)) result.modeChanged++;
      this.enroll(p); // refreshes the uid after a restart too
      want.delete(id);
    }
    for (const p of want.values()) {
      this.enroll(p);
      result.enrolled++;
    }
    const d = this.setDestinations(desired.destinations);
    result.destinationsAdded = d.added;
    result.destinationsRemoved = d.removed;
    if (result.enrolled + result.unenrolled + result.modeChanged + d.added + d.removed > 0) this.logger.info('capture reconciled', { ...result });
    return result;
  }

  /**
   * Re-attach any program whose pinned link is gone or was detached (someone ran `bpftool link detach`, or
   * removed a pin): the links that had to be attached again, empty when all was in place.
   */
  repairLinks(): string[] {
    return ensureAttached(this.pinDir, this.cgroupRoot, this.objectsDir, this.logger).attached;
  }

  // ---- fail mode: is the proxy serving? ------------------------------------------------------------

  /**
   * The heartbeat: the proxy is serving until `deadlineNs` (CLOCK_MONOTONIC, process.hrtime.bigint()'s
   * clock, which is bpf_ktime_get_ns()'s). Past it, captured connections follow their pods' fail mode.
   */
  servingUntil(deadlineNs: bigint): void {
    this.alive.update(0, deadlineNs > 1n ? deadlineNs : 2n);
  }

  /** The proxy stops serving now (the last agent is leaving the node): the fail mode applies at once. */
  notServing(): void {
    this.alive.update(0, 1n);
  }

  /** No heartbeat kept: always serving (capture driven without an agent). */
  noHeartbeat(): void {
    this.alive.update(0, 0n);
  }

  // ---- connections the proxy opens to local pods (STRICT guard, transparent sources) ----------------

  /** The proxy is about to connect sourceIp:sourcePort -> ip:port: the STRICT guard admits that SYN. */
  register(s: { sourceIp: string; sourcePort: number; ip: string; port: number }): void {
    this.proxySyn.update({ peerIp: s.sourceIp, peerPort: s.sourcePort, localIp: s.ip, localPort: s.port }, 0);
  }

  /** The handshake is over (or failed): the entry is no longer needed. */
  forget(s: { sourceIp: string; sourcePort: number; ip: string; port: number }): void {
    this.proxySyn.delete({ peerIp: s.sourceIp, peerPort: s.sourcePort, localIp: s.ip, localPort: s.port });
  }

  // ---- the proxy's lookup -----------------------------------------------------------------------

  /**
   * The proxy's per-connection question. Consumes the record (lookup and delete in one syscall): each
   * accepted connection is looked up once, and this is what keeps the map small in the normal case.
   */
  lookup(peer: SocketAddress, local: SocketAddress): OriginalDestination | undefined {
    return this.find(peer, local, true);
  }

  /** Like lookup, without consuming the record (diagnostics, tests, benchmarks). */
  peek(peer: SocketAddress, local: SocketAddress): OriginalDestination | undefined {
    return this.find(peer, local, false);
  }

  private find(peer: SocketAddress, local: SocketAddress, consume: boolean): OriginalDestination | undefined {
    try {
      tupleCodec.encode({ peerIp: peer.ip, peerPort: peer.port, localIp: local.ip, localPort: local.port }, this.lookupKey, 0);
    } catch {
      this.userLookupMisses++;
      return undefined; // not an IP tuple we could have recorded
    }
    const hit = consume ? this.origByTuple.lookupAndDeleteInto(this.lookupKey, this.lookupValue) : this.origByTuple.lookupInto(this.lookupKey, this.lookupValue);
    if (!hit) {
      this.userLookupMisses++;
      return undefined;
    }
    const o = origCodec.decode(this.lookupValue, 0);
    return { ip: o.ip, port: o.port, family: o.family, cgroupId: o.cgroupId };
  }

  /**
   * Delete records nobody will ask for any more: tuple records whose pod socket closed more than
   * `graceMs` ago without the proxy consuming them, and cookie records older than `cookieMaxAgeMs` (a
   * connect that failed before TCP started). Returns how many were deleted.
   */
  sweep(graceMs = 10_000, cookieMaxAgeMs = 300_000): { tuples: number; cookies: number } {
    const now = process.hrtime.bigint(); // CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns
    const grace = BigInt(graceMs) * 1_000_000n;
    const maxAge = BigInt(cookieMaxAgeMs) * 1_000_000n;
    let tuples = 0;
    let cookies = 0;
    for (const [k, v] of this.origByTuple.entries()) {
      if (v.closedNs !== 0n && now - v.closedNs >= grace && this.origByTuple.delete(k)) tuples++;
    }
    for (const [k, v] of this.origByCookie.entries()) {
      if (now - v.createdNs >= maxAge && this.origByCookie.delete(k)) cookies++;
    }
    if (tuples + cookies > 0) this.logger.debug('swept capture records', { tuples, cookies });
    return { tuples, cookies };
  }

  /** Run sweep() every `intervalMs` until close(). The timer does not keep the process alive. */
  startSweeping(intervalMs = 5_000, graceMs = 10_000): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => {
      try {
        this.sweep(graceMs);
      } catch (e) {
        this.logger.warn('sweep of capture records failed', { error: e });
      }
    }, intervalMs);
    this.sweeper.unref();
  }

  // ---- observability ----------------------------------------------------------------------------

  readCounters(): RedirectCounters {
    return { ...sumCounters(this.counters), userLookupMisses: this.userLookupMisses };
  }

  mapEntries(): MapEntryCounts {
    return { pods: this.pods.count(), destinations: this.destMirror().size, origByCookie: this.origByCookie.count(), origByTuple: this.origByTuple.count() };
  }

  captureConfig(): CaptureConfig | undefined {
    return this.config.lookup(0);
  }

  // ---- lifecycle --------------------------------------------------------------------------------

  /** Release this process's handles. Programs stay attached and maps keep their contents (pinned). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const m of [this.config, this.pods, this.dests, this.origByCookie, this.origByTuple, this.guardSources, this.podPorts, this.proxySyn, this.counters, this.alive]) m.close();
  }

  /** Detach every program and remove every pin of this instance; the manager is closed afterwards. */
  uninstall(): UninstallReport {
    this.close();
    return uninstallPins(this.pinDir, this.logger);
  }
}

export { ensureMaps };
