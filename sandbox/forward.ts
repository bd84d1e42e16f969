// Port-forwards from the machine's loopback into sandbox namespaces, with no route into the sandbox's
// address ranges: a socat in the root namespace listens on 127.0.0.1:<port> and relays each connection
// over a unix socket (a file, so it crosses network namespaces) to a socat inside the target netns,
// which connects to the target there, locally. Both run in the sandbox's system cgroup, so `down` (and
// a crash cleanup) ends them with everything else.
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { spawnIn } from './host/enter.js';

export interface ForwardSpec {
  /** file-name-safe label: controller-web, node-1-metrics */
  name: string;
  netns: string;
  /** host:port inside the netns */
  target: string;
}

export interface Forward extends ForwardSpec {
  port: number;
  socket: string;
  pids: number[];
}

function start(cgroup: string, argv: string[], netns?: string): number {
  const child = spawnIn({ cgroup, ...(netns ? { netns } : {}) }, argv, { env: process.env, stdio: 'ignore', detached: true });
  child.on('error', () => {});
  child.unref();
  return child.pid ?? -1;
}

/** A free loopback port, as the kernel picks one. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/** True once something listens on 127.0.0.1:port (a bind attempt fails with EADDRINUSE). */
async function taken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(true));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function startForward(spec: ForwardSpec, dir: string, cgroup: string): Promise<Forward> {
  const socket = join(dir, `${spec.name}.sock`);
  const inner = start(cgroup, ['socat', `UNIX-LISTEN:${socket},fork,unlink-early,mode=600`, `TCP:${spec.target}`], spec.netns);
  // The kernel hands out the port; if another program grabs it between our probe and socat's bind, try again.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const outer = start(cgroup, ['socat', `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `UNIX-CONNECT:${socket}`]);
    for (let i = 0; i < 100 && alive(outer); i++) {
      if (await taken(port)) return { ...spec, port, socket, pids: [inner, outer] };
      await sleep(10);
    }
    try {
      process.kill(outer, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  throw new Error(`could not start the loopback forwarder for ${spec.name}`);
}
