// A stand-in for @kubernetes/client-node's ListWatch: start() "lists" the objects it holds, then tests push
// watch events by hand.
import type { InformerEvent, WatchedCollection } from '../../agent/kubernetes/node-pod-source.js';

export class FakeInformer<T> implements WatchedCollection<T> {
  private readonly handlers: Record<string, ((x: never) => void)[]> = {};
  started = 0;
  failNextStart: unknown;

  constructor(public initial: T[] = []) {}

  on(verb: InformerEvent | 'error', cb: (x: never) => void): void {
    (this.handlers[verb] ??= []).push(cb);
  }

  async start(): Promise<void> {
    this.started++;
    if (this.failNextStart !== undefined) {
      const e = this.failNextStart;
      this.failNextStart = undefined;
      throw e;
    }
    for (const o of this.initial) this.emit('add', o);
  }

  async stop(): Promise<void> {}

  emit(verb: InformerEvent | 'error', obj: unknown): void {
    for (const cb of this.handlers[verb] ?? []) (cb as (x: unknown) => void)(obj);
  }
}
