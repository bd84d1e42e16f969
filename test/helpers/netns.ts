// Pod stand-ins for kernel tests: a "node" network namespace and N "pod" namespaces, each pod joined to
// the node by a veth pair and given its own cgroup under a test-owned cgroup root. Pods have NO default
// route: a connection that capture fails to redirect fails inside the pod (ENETUNREACH), it never leaks.
//
// Every resource is named `weft-t<pid>-lab<tag>...` so parallel test runs never touch each other's, and
// leftovers of a crashed run (whose pid is gone) are swept by the next run; the sweep only matches names
// this module makes (the `-lab` marker), never another tool's.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

import { cgroup2Mount, cgroupId, cgroupPids, createCgroup, removeCgroup } from '../../native/cgroup.js';
import { tcpListenerInNetns } from '../../native/netns.js';

export interface PodNs {
  index: number;
  uid: string;
  netns: string;
  netnsPath: string;
  cgroupPath: string;
  cgroupId: bigint;
  ipv4: string;
  ipv6: string;
  /** the node side of this pod's veth: where the stand-in node proxy listens */
  nodeIpv4: string;
  nodeIpv6: string;
  /** a second node-side address, for "not the node proxy" sources */
  otherIpv4: string;
  otherIpv6: string;
}

export interface Lab {
  prefix: string;
  cgroupRoot: string;
  nodeNetns: string;
  nodeNetnsPath: string;
  pinDir: string;
  pods: PodNs[];
  /** a cgroup under the root that is NOT enrolled, sharing pod 0's network namespace */
  strangerCgroup: string;
  destroy(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove netns, cgroups and pins named weft-t<pid>-lab* of test processes that no longer exist. */
export function sweepStale(): void {
  const stale = (name: string) => {
    const m = /^weft-t(\d+)-lab/.exec(name);
    return m !== null && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]));
  };
  try {
    for (const n of readdirSync('/run/netns')) if (stale(n)) spawnSyncQuiet('ip', ['netns', 'del', n]);
  } catch {
    /* no /run/netns */
  }
  const mount = cgroup2Mount();
  for (const n of readdirSync(mount)) {
    if (!stale(n)) continue;
    try {
      removeCgroup(join(mount, n), mount);
    } catch {
      /* still busy; next sweep */
    }
  }
  if (existsSync('/sys/fs/bpf')) {
    for (const n of readdirSync('/sys/fs/bpf')) if (stale(n)) rmSync(join('/sys/fs/bpf', n), { recursive: true, force: true });
  }
}

function spawnSyncQuiet(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
  } catch {
    /* best effort */
  }
}

/** Build a node namespace with `podCount` pods. Call destroy() in t.teardown. */
export function createLab(tag: string, podCount = 1): Lab {
  sweepStale();
  const prefix = `weft-t${process.pid}-lab${tag}`;
  const mount = cgroup2Mount();
  const cgroupRoot = join(mount, prefix);
  const nodeNetns = `${prefix}-node`;
  const pods: PodNs[] = [];
  const lab: Lab = {
    prefix,
    cgroupRoot,
    nodeNetns,
    nodeNetnsPath: `/run/netns/${nodeNetns}`,
    pinDir: `/sys/fs/bpf/${prefix}`,
    pods,
    strangerCgroup: join(cgroupRoot, 'stranger'),
    destroy: () => destroyLab(lab),
  };
  try {
    createCgroup(cgroupRoot, mount);
    createCgroup(lab.strangerCgroup, mount);
    ip('netns', 'add', nodeNetns);
    ip('-n', nodeNetns, 'link', 'set', 'lo', 'up');
    for (let i = 0; i < podCount; i++) {
      const uid = `${prefix}-uid-${i}`;
      const netns = `${prefix}-pod${i}`;
      const cgroupPath = join(cgroupRoot, `pod-${uid}`);
      const n = i + 1;
      const pod: PodNs = {
        index: i,
        uid,
        netns,
        netnsPath: `/run/netns/${netns}`,
        cgroupPath,
        cgroupId: createCgroup(cgroupPath, mount),
        ipv4: `10.200.${n}.2`,
        ipv6: `fd00:200:${n}::2`,
        nodeIpv4: `10.200.${n}.1`,
        nodeIpv6: `fd00:200:${n}::1`,
        otherIpv4: `10.200.${n}.3`,
        otherIpv6: `fd00:200:${n}::3`,
      };
      pods.push(pod);
      ip('netns', 'add', netns);
      ip('-n', netns, 'link', 'set', 'lo', 'up');
      // created inside the node namespace with its peer moved straight into the pod: never in the root netns
      ip('-n', nodeNetns, 'link', 'add', `vp${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns);
      for (const a of [`${pod.nodeIpv4}/24`, `${pod.otherIpv4}/24`]) ip('-n', nodeNetns, 'addr', 'add', a, 'dev', `vp${i}`);
      for (const a of [`${pod.nodeIpv6}/64`, `${pod.otherIpv6}/64`]) ip('-n', nodeNetns, 'addr', 'add', a, 'dev', `vp${i}`, 'nodad');
      ip('-n', nodeNetns, 'link', 'set', `vp${i}`, 'up');
      ip('-n', netns, 'addr', 'add', `${pod.ipv4}/24`, 'dev', 'eth0');
      ip('-n', netns, 'addr', 'add', `${pod.ipv6}/64`, 'dev', 'eth0', 'nodad');
      ip('-n', netns, 'link', 'set', 'eth0', 'up');
    }
  } catch (e) {
    destroyLab(lab);
    throw e;
  }
  return lab;
}

function destroyLab(lab: Lab): void {
  const mount = cgroup2Mount();
  // processes left in the lab's cgroups (a test that failed half-way) are ended first
  for (const cg of [...lab.pods.map((p) => p.cgroupPath), lab.strangerCgroup]) {
    for (const pid of cgroupPids(cg)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  for (const p of lab.pods) spawnSyncQuiet('ip', ['netns', 'del', p.netns]);
  spawnSyncQuiet('ip', ['netns', 'del', lab.nodeNetns]);
  for (let i = 0; i < 50; i++) {
    try {
      removeCgroup(lab.cgroupRoot, mount);
      break;
    } catch {
      execFileSync('sleep', ['0.05']);
    }
  }
  if (existsSync(lab.pinDir)) rmSync(lab.pinDir, { recursive: true, force: true });
}

/**
 * Spawn `cmd` inside a cgroup and a network namespace: the shell joins the cgroup first (so the program's
 * sockets belong to it), then nsenter switches only the network namespace (`ip netns exec` would remount
 * /sys and hide the cgroup file system).
 */
export function spawnIn(cgroupPath: string, netnsPath: string, cmd: string, args: string[]): ChildProcess {
  const script = 'echo $$ > "$1/cgroup.procs" || exit 97; ns="$2"; shift 2; exec nsenter --net="$ns" -- "$@"';
  return spawn('sh', ['-c', script, 'sh', cgroupPath, netnsPath, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runIn(cgroupPath: string, netnsPath: string, cmd: string, args: string[], timeoutMs = 10_000): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawnIn(cgroupPath, netnsPath, cmd, args);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin!.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A TCP server listening inside a network namespace (the stand-in node proxy), served by this process. */
export async function listenInNetns(netnsPath: string, host: string, port: number, onConnection: (s: net.Socket) => void): Promise<net.Server> {
  const fd = tcpListenerInNetns(netnsPath, host, port);
  const server = net.createServer(onConnection);
  const open = new Set<net.Socket>();
  connections.set(server, open);
  server.on('connection', (s: net.Socket) => {
    open.add(s);
    s.once('close', () => open.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd }, () => resolve());
  });
  return server;
}

const connections = new WeakMap<net.Server, Set<net.Socket>>();

/** Stop listening and end the connections still open (a test's stand-in never waits for its clients). */
export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const s of connections.get(server) ?? []) s.destroy();
  });
}

export { cgroupId };
