// An in-memory Duplex stand-in for a socket, driven synchronously so a codec runs a million inputs in
// seconds: bytes are delivered as 'data' while flowing, pause() holds them, unshift() puts bytes back,
// end() / destroy() are recorded. What a real socket defers to the next tick ('close', delivery after
// resume() from inside a 'data' handler) goes through a task queue the driver runs, so no handler is
// re-entered in a way a real socket never would.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';

export class MemSocket extends EventEmitter {
  private queue: Buffer[] = [];
  private flowing = true;
  private delivering = false;
  private inputEnded = false;
  private endEmitted = false;
  private readonly tasks: Array<() => void> = [];
  readonly written: Buffer[] = [];
  writableEnded = false;
  destroyed = false;

  /** the peer sends bytes */
  push(chunk: Buffer): void {
    this.queue.push(chunk);
    this.flow();
  }

  /** the peer half-closes */
  pushEnd(): void {
    this.inputEnded = true;
    this.flow();
  }

  /** runs what a real socket would run on later ticks, until nothing is left (bounded: a loop is a hang) */
  settle(maxTasks = 100_000): void {
    for (let i = 0; this.tasks.length > 0; i++) {
      if (i >= maxTasks) throw new Error(`socket tasks never settle (${maxTasks} run): a livelock`);
      this.tasks.shift()!();
    }
  }

  /** runs `fn` on a later "tick" (settle() runs it) */
  later(fn: () => void): void {
    this.tasks.push(fn);
  }

  private flow(): void {
    if (this.delivering) return;
    this.delivering = true;
    try {
      while (this.flowing && !this.destroyed && this.queue.length > 0) this.emit('data', this.queue.shift()!);
      if (this.flowing && !this.destroyed && this.inputEnded && this.queue.length === 0 && !this.endEmitted) {
        this.endEmitted = true;
        this.emit('end');
      }
    } finally {
      this.delivering = false;
    }
  }

  pause(): this {
    this.flowing = false;
    return this;
  }

  resume(): this {
    if (this.flowing) return this;
    this.flowing = true;
    this.tasks.push(() => this.flow());
    return this;
  }

  unshift(chunk: Buffer): void {
    this.queue.unshift(chunk);
  }

  write(chunk: Buffer | string): boolean {
    if (this.destroyed || this.writableEnded) return false;
    this.written.push(Buffer.from(chunk));
    return true;
  }

  end(chunk?: Buffer | string): this {
    if (chunk !== undefined) this.write(chunk);
    this.writableEnded = true;
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.tasks.push(() => this.emit('close', false));
    return this;
  }

  get output(): string {
    return Buffer.concat(this.written).toString('latin1');
  }

  asDuplex(): Duplex {
    return this as unknown as Duplex;
  }
}
