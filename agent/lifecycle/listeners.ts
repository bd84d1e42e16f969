// Who else listens on our ports: read from /proc/net/tcp{,6} of the agent's network namespace. During a
// restart the old agent closes its listeners only once a successor's are in the same SO_REUSEPORT group
// (another LISTEN socket on the port, with an inode that is not ours); with no successor it keeps
// accepting, because capture keeps sending the node's connections here.
import { readFileSync } from 'node:fs';

export interface ProcListener {
  port: number;
  inode: number;
}

/** LISTEN sockets in a /proc/net/tcp-format table. */
export function parseListeners(table: string): ProcListener[] {
  const out: ProcListener[] = [];
  for (const line of table.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 10 || cols[3] !== '0A') continue;
    const port = parseInt(cols[1]!.split(':')[1] ?? '', 16);
    const inode = Number(cols[9]);
    if (Number.isFinite(port) && Number.isFinite(inode)) out.push({ port, inode });
  }
  return out;
}

/** Reads LISTEN sockets of the current network namespace (`dir`: /proc/self/net, or /proc/thread-self/net in tests). */
export function readListeners(dir = '/proc/self/net'): ProcListener[] {
  const out: ProcListener[] = [];
  for (const f of ['tcp', 'tcp6']) {
    try {
      out.push(...parseListeners(readFileSync(`${dir}/${f}`, 'utf8')));
    } catch {
      // no IPv6 table: nothing listed from it
    }
  }
  return out;
}

/**
 * True when every port in `ports` has a LISTEN socket whose inode is not in `ours`: a successor (or, with
 * workers, a sibling that stays) will take the connections our listeners would have.
 */
export function othersListen(ports: number[], ours: Set<number>, listeners: ProcListener[] = readListeners()): boolean {
  return ports.every((p) => listeners.some((l) => l.port === p && !ours.has(l.inode)));
}
