// Runtime state of the data path that must outlive a config version: balancer cursors and load, outlier
// ejections, retry budgets, token buckets, circuit counters. Stages are rebuilt per version and find their
// state here by stable ids ("<ns>/<svc>:<port>", endpoint "ip:port", policy key), so a new version does not
// reset a round-robin cursor, forgive an ejected endpoint or refill a rate limit.

export class RuntimeState {
  private readonly spaces = new Map<string, Map<string, unknown>>();

  /** The state kept under `key` in `space` (one space per feature: "rr", "outlier", "bucket", ...), created by `init` on first use. */
  get<T>(space: string, key: string, init: () => T): T {
    let m = this.spaces.get(space);
    if (!m) this.spaces.set(space, (m = new Map()));
    let v = m.get(key) as T | undefined;
    if (v === undefined) m.set(key, (v = init()));
    return v;
  }

  peek<T>(space: string, key: string): T | undefined {
    return this.spaces.get(space)?.get(key) as T | undefined;
  }

  delete(space: string, key: string): void {
    this.spaces.get(space)?.delete(key);
  }

  /** Drops the entries of `space` that `keep` rejects (a feature prunes what no config refers to any more). */
  retain(space: string, keep: (key: string) => boolean): void {
    const m = this.spaces.get(space);
    if (!m) return;
    for (const k of m.keys()) if (!keep(k)) m.delete(k);
  }

  /** Entries per space, for the admin page. */
  sizes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, m] of this.spaces) out[k] = m.size;
    return out;
  }
}
