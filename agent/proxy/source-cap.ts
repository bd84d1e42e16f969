// A cap on the connections one source holds open at once through a listener, so one pod (or one address
// outside the mesh) cannot take every connection the proxy can hold and starve the others.
import type { Socket } from 'node:net';

export class SourceCap {
  private readonly open = new Map<string, number>();

  constructor(readonly limit: number) {}

  /** How many `key` holds now. */
  held(key: string): number {
    return this.open.get(key) ?? 0;
  }

  /** Counts `socket` against `key` until it closes; false (nothing counted) when `key` is at the limit. */
  admit(key: string, socket: Socket): boolean {
    const held = this.held(key);
    if (held >= this.limit) return false;
    this.open.set(key, held + 1);
    socket.once('close', () => {
      const n = this.held(key) - 1;
      if (n > 0) this.open.set(key, n);
      else this.open.delete(key);
    });
    return true;
  }
}
