// `weft top`'s aggregation (linkerd viz top's columns): tapped requests grouped by source workload,
// destination workload, method and path (query cut off), with count, best, worst and last latency and the
// success rate (responses that are not 5xx; no response is a failure). A request both proxies report is
// counted once: by the caller's proxy when the caller is in the mesh (what the caller got: retries, connection
// failures and the proxy's own answers included; its proxy reports every request it sends), by the
// destination's proxy only for callers outside the mesh (no caller identity: nobody else saw it).
import type { TapEvent } from '../common/tap.js';

export interface TopRow {
  source: string;
  destination: string;
  method: string;
  path: string;
  count: number;
  bestMs: number;
  worstMs: number;
  lastMs: number;
  successes: number;
  /** successes / count */
  success: number;
}

function name(p: { namespace: string | null; workload: string | null; addr: string | null }): string {
  return p.workload ? `${p.namespace ?? '-'}/${p.workload}` : (p.addr ?? '-');
}

/** Whether this view is the one a request is counted by (see above). */
export function countedView(e: TapEvent): boolean {
  return e.reporter === 'source' || e.source.principal === null;
}

export class TopTable {
  private readonly rows = new Map<string, TopRow>();
  /** request views counted, and those left out because the other proxy's view counts them */
  counted = 0;
  skipped = 0;

  add(e: TapEvent): boolean {
    if (!countedView(e)) {
      this.skipped++;
      return false;
    }
    this.counted++;
    const q = e.path.indexOf('?');
    const path = q >= 0 ? e.path.slice(0, q) : e.path;
    const source = name(e.source);
    const destination = name(e.destination);
    const key = `${source}\u0000${destination}\u0000${e.method}\u0000${path}`;
    let r = this.rows.get(key);
    if (!r) this.rows.set(key, (r = { source, destination, method: e.method, path, count: 0, bestMs: Infinity, worstMs: 0, lastMs: 0, successes: 0, success: 0 }));
    r.count++;
    r.bestMs = Math.min(r.bestMs, e.latencyMs);
    r.worstMs = Math.max(r.worstMs, e.latencyMs);
    r.lastMs = e.latencyMs;
    if (e.status > 0 && e.status < 500) r.successes++;
    r.success = r.successes / r.count;
    return true;
  }

  /** busiest first (then by name, so equal counts do not jump around between redraws) */
  top(limit = Infinity): TopRow[] {
    return [...this.rows.values()]
      .sort((a, b) => b.count - a.count || a.source.localeCompare(b.source) || a.destination.localeCompare(b.destination) || a.path.localeCompare(b.path) || a.method.localeCompare(b.method))
      .slice(0, limit);
  }

  get size(): number {
    return this.rows.size;
  }
}
