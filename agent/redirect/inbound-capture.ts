// Inbound capture: connections to an enrolled pod that did not come through the node proxy (callers outside
// the mesh) are handed to the proxy, so the destination's policy applies to every way traffic arrives.
//
// Per pod: a listening socket made inside the pod's network namespace (loopback, a free port: it takes no
// port the pod could want), the sk_lookup program (bpf/inbound_lookup.c) attached to that namespace through
// a pinned link `link_in_<pod>`, and the pod's addresses in weft_in_pods / weft_in_socks. The link and
// weft_in_pods are pinned, the socket is this process's: while no agent runs, connections from outside the
// mesh are refused (reset) rather than let past the policy, and a new agent re-uses the link and puts its
// own socket in.
// Pods leave by reconcile (their entries, socket and link go); `weft capture uninstall` removes the rest.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import type { Logger } from '../../common/log.js';
import { BpfLink, BpfMap, BpfObject, unpin } from '../../native/bpf.js';
import { u64 } from '../../native/codec.js';
import { libc } from '../../native/libc.js';
import { currentNetnsCookie, netnsCookie, tcpListenerInNetns } from '../../native/netns.js';
import { DEFAULT_OBJECTS_DIR } from './pins.js';
import { INBOUND_LOOKUP, MAPS, addrCodec } from './layout.js';

export interface InboundPod {
  uid: string;
  cgroupId: bigint;
  /** the pod's cgroup directory: its network namespace is found through a process in it */
  cgroupPath: string;
  ips: string[];
}

export interface InboundCaptureOptions {
  pinDir: string;
  objectsDir?: string;
  logger: Logger;
  /** serves a listening socket (the proxy's inbound plaintext handler); returns what stops serving it */
  serve(fd: number): () => void;
}

interface Installed {
  pod: InboundPod;
  stop: Array<() => void>;
  link: BpfLink;
}

/** The network namespace of the first process found in the cgroup or below it (containers sit in child cgroups). */
export function netnsOfCgroup(cgroupPath: string): string | undefined {
  const dirs = [cgroupPath];
  while (dirs.length > 0) {
    const dir = dirs.shift()!;
    let procs: string;
    try {
      procs = readFileSync(join(dir, 'cgroup.procs'), 'utf8');
    } catch {
      continue;
    }
    const pid = procs.split('\n').find((l) => /^\d+$/.test(l));
    if (pid) return `/proc/${pid}/ns/net`;
    try {
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) dirs.push(join(dir, e.name));
    } catch {
      // the cgroup went away meanwhile
    }
  }
  return undefined;
}

/** bpffs names may not contain dots; Kubernetes uids are UUIDs, the sandbox's are plain words. */
function pinName(uid: string): string {
  return INBOUND_LOOKUP.linkPrefix + uid.replace(/[^A-Za-z0-9_-]/g, '_');
}

export class InboundCapture {
  private readonly installed = new Map<string, Installed>();
  private readonly hostCookie = currentNetnsCookie();
  private closed = false;

  private constructor(
    private readonly o: InboundCaptureOptions,
    private readonly obj: BpfObject,
    private readonly pods: BpfMap<string, bigint>,
    private readonly socks: BpfMap<string, bigint>,
  ) {}

  /** Loads the sk_lookup program (its maps are the pinned ones of the capture instance at pinDir). */
  static open(o: InboundCaptureOptions): InboundCapture {
    const obj = BpfObject.load(join(o.objectsDir ?? DEFAULT_OBJECTS_DIR, INBOUND_LOOKUP.file), { pinRoot: o.pinDir });
    try {
      const pods = BpfMap.openPinned(join(o.pinDir, MAPS.inPods), addrCodec, u64);
      const socks = BpfMap.openPinned(join(o.pinDir, MAPS.inSocks), addrCodec, u64);
      return new InboundCapture(o, obj, pods, socks);
    } catch (e) {
      obj.close();
      throw e;
    }
  }

  /**
   * Make the installed pods equal to `want`. Pods whose namespace cannot be found yet (no process) or whose
   * installation failed are returned, to be tried again; nothing of them is left half-made.
   */
  reconcile(want: InboundPod[]): { pending: string[] } {
    const byUid = new Map(want.map((p) => [p.uid, p]));
    for (const [uid, inst] of this.installed) {
      const p = byUid.get(uid);
      if (!p || p.cgroupId !== inst.pod.cgroupId || p.ips.join() !== inst.pod.ips.join()) this.remove(uid);
    }
    // entries an earlier agent left for pods that are gone (the map is pinned; this process's memory is not)
    const wantIps = new Set(want.flatMap((p) => p.ips));
    for (const ip of this.pods.keys()) if (!wantIps.has(ip)) this.pods.delete(ip);
    const wantPins = new Set(want.map((p) => pinName(p.uid)));
    for (const name of readdirSync(this.o.pinDir)) if (name.startsWith(INBOUND_LOOKUP.linkPrefix) && !wantPins.has(name)) this.unpinLink(join(this.o.pinDir, name));
    const pending: string[] = [];
    for (const p of want) {
      if (this.installed.has(p.uid)) continue;
      try {
        if (!this.install(p)) pending.push(p.uid);
      } catch (e) {
        this.o.logger.warn('inbound capture of a pod failed; retrying', { pod: p.uid, error: e });
        pending.push(p.uid);
      }
    }
    return { pending };
  }

  private install(p: InboundPod): boolean {
    const nsPath = netnsOfCgroup(p.cgroupPath);
    if (!nsPath) return false;
    let ino: number;
    try {
      ino = statSync(nsPath).ino;
    } catch {
      return false; // the process exited meanwhile
    }
    // never the node's own namespace (a hostNetwork pod): steering there would take the node's connections
    if (netnsCookie(nsPath) === this.hostCookie) {
      this.o.logger.warn('pod shares the node network namespace; inbound capture skipped', { pod: p.uid });
      return true;
    }
    const stop: Array<() => void> = [];
    const fds: Array<{ fd: number; family: 4 | 6 }> = [];
    let link: BpfLink | undefined;
    try {
      for (const family of new Set(p.ips.map((ip) => (ip.includes(':') ? 6 : 4) as 4 | 6))) {
        const fd = tcpListenerInNetns(nsPath, family === 6 ? '::1' : '127.0.0.1', 0);
        fds.push({ fd, family });
        // the server owns the fd from here: stopping it closes the socket
        stop.push(this.o.serve(fd));
      }
      link = this.link(p, nsPath, ino);
      // the socket before the address: a pod in weft_in_pods without a socket has its connections refused
      for (const ip of p.ips) {
        const f = fds.find((x) => x.family === (ip.includes(':') ? 6 : 4))!;
        this.socks.update(ip, BigInt(f.fd));
      }
      for (const ip of p.ips) this.pods.update(ip, p.cgroupId);
    } catch (e) {
      for (const ip of p.ips) {
        this.pods.delete(ip);
        this.socks.delete(ip);
      }
      for (const s of stop) s();
      for (const f of fds.slice(stop.length)) libc().close(f.fd);
      if (link) this.unpinLink(join(this.o.pinDir, pinName(p.uid)), link);
      throw e;
    }
    this.installed.set(p.uid, { pod: p, stop, link });
    this.o.logger.info('inbound capture on', { pod: p.uid, ips: p.ips });
    return true;
  }

  /** The pod's pinned link: re-used when it is still attached to this namespace, else attached anew. */
  private link(p: InboundPod, nsPath: string, ino: number): BpfLink {
    const pin = join(this.o.pinDir, pinName(p.uid));
    try {
      const old = BpfLink.openPinned(pin);
      if (old.info().netnsIno === ino) return old;
      this.unpinLink(pin, old);
    } catch {
      // no pin yet
    }
    const link = this.obj.attachNetns(INBOUND_LOOKUP.program, nsPath);
    try {
      link.pin(pin);
    } catch (e) {
      link.close();
      throw e;
    }
    return link;
  }

  private unpinLink(pin: string, open?: BpfLink): void {
    let link = open;
    try {
      link ??= BpfLink.openPinned(pin);
      link.detach();
    } catch (e) {
      // a link whose namespace is gone is detached already
      this.o.logger.debug('inbound link not detached', { pin, error: e });
    } finally {
      link?.close();
    }
    unpin(pin);
  }

  /** Steering off for the pod: its addresses, its socket, its link. */
  remove(uid: string): void {
    const inst = this.installed.get(uid);
    if (!inst) return;
    this.installed.delete(uid);
    for (const ip of inst.pod.ips) {
      this.pods.delete(ip);
      this.socks.delete(ip);
    }
    for (const s of inst.stop) s();
    this.unpinLink(join(this.o.pinDir, pinName(uid)), inst.link);
    this.o.logger.info('inbound capture off', { pod: uid });
  }

  /** Pods with inbound capture on. */
  steered(): string[] {
    return [...this.installed.keys()];
  }

  /**
   * Release this process's handles: links and weft_in_pods stay pinned (connections from outside the mesh
   * are refused, not let past the policy, until the next agent), the sockets close with their servers.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const inst of this.installed.values()) {
      for (const s of inst.stop) s();
      inst.link.close();
    }
    this.installed.clear();
    this.pods.close();
    this.socks.close();
    this.obj.close();
  }
}
