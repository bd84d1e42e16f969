// The CLI's end of a tap: the flags `weft tap` and `weft top` share, and the stream from the controller's
// GET /api/v1/tap (newline-delimited JSON, common/tap.ts) read line by line until the duration, the count,
// Ctrl-C or the controller ends it.
import { readFileSync } from 'node:fs';

import { WeftConfigError, WeftError } from '../common/errors.js';
import { parseMaxRps, parseTapFilter, type TapDrops, type TapLine, type TapOptions } from '../common/tap.js';
import { unreachable, type Target } from './target.js';

export const TAP_FLAG_OPTIONS = {
  to: { type: 'string' },
  pod: { type: 'string' },
  path: { type: 'string' },
  method: { type: 'string' },
  status: { type: 'string' },
  'max-rps': { type: 'string' },
  duration: { type: 'string' },
  'token-file': { type: 'string' },
} as const;

export const TAP_FLAGS_HELP = `filters (all must match):
  NAMESPACE[/WORKLOAD]  requests from or to it
  --to NS[/WORKLOAD]    requests to it
  --pod NAME            requests from or to this pod
  --path PREFIX         request paths starting with PREFIX
  --method METHOD       GET, POST, ...
  --status CLASS|CODE   2xx, 4xx, 5xx, ... or one code (404)
cost and time:
  --max-rps N           requests per second each agent sends for this tap (default 100, at most 1000);
                        more are counted as dropped and reported, not shown
  --duration D          stop after D (10s, 2m); default: until Ctrl-C
  --token-file FILE     operator token when the controller has --operator-token-file (or WEFT_OPERATOR_TOKEN)
`;

export interface TapRequest {
  query: URLSearchParams;
  durationMs: number | undefined;
  token: string | undefined;
}

export function parseDuration(where: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(v);
  const ms = m ? Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000) : NaN;
  if (!(ms > 0)) throw new WeftConfigError(where, `"${v}" is not a duration like 500ms, 10s or 2m`);
  return ms;
}

/** Flags → the controller's query; every filter is checked here too, so a typo fails before connecting. */
export function tapRequest(values: Record<string, unknown>, positionals: string[], cmd: string): TapRequest {
  if (positionals.length > 1) throw new WeftConfigError(`weft ${cmd}`, `takes one NAMESPACE[/WORKLOAD], got ${positionals.join(' ')}`);
  const opts: TapOptions = {
    selector: positionals[0],
    to: values.to as string | undefined,
    pod: values.pod as string | undefined,
    path: values.path as string | undefined,
    method: values.method as string | undefined,
    status: values.status as string | undefined,
  };
  parseTapFilter(opts);
  const maxRps = parseMaxRps(values['max-rps'] as string | undefined);
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(opts)) if (v !== undefined) query.set(k, v);
  query.set('maxRps', String(maxRps));
  const tokenFile = values['token-file'] as string | undefined;
  return { query, durationMs: parseDuration('--duration', values.duration as string | undefined), token: tokenFile ? readFileSync(tokenFile, 'utf8').trim() : process.env.WEFT_OPERATOR_TOKEN };
}

/** Drop counts as they add up over a tap, per reason. */
export class DropTotals {
  queue = 0;
  rate = 0;
  controller = 0;

  add(d: TapDrops): void {
    this.queue += d.queue;
    this.rate += d.rate;
    this.controller += d.controller;
  }

  get total(): number {
    return this.queue + this.rate + this.controller;
  }

  describe(maxRps: number): string {
    const parts = [];
    if (this.rate) parts.push(`${this.rate} over the rate cap (--max-rps ${maxRps})`);
    if (this.queue) parts.push(`${this.queue} past a full agent queue`);
    if (this.controller) parts.push(`${this.controller} the controller could not send fast enough`);
    return parts.length ? `dropped ${this.total} requests: ${parts.join(', ')}` : 'nothing dropped';
  }
}

/**
 * Opens the tap and calls `onLine` for every line until `signal` aborts, the duration passes, or the
 * controller ends the stream. Resolves when it is over (an abort is the normal end).
 */
export async function runTap(t: Target, req: TapRequest, onLine: (l: TapLine) => boolean | void, signal: AbortSignal): Promise<void> {
  const ac = new AbortController();
  const stop = () => ac.abort();
  signal.addEventListener('abort', stop, { once: true });
  const timer = req.durationMs !== undefined ? setTimeout(stop, req.durationMs) : undefined;
  try {
    let res: Response;
    try {
      res = await fetch(`${t.controller}/api/v1/tap?${req.query}`, { signal: ac.signal, headers: req.token ? { authorization: `Bearer ${req.token}` } : {} });
    } catch (e) {
      if (ac.signal.aborted) return;
      throw unreachable(t, e);
    }
    if (!res.ok) throw await refusal(t, res);
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const text = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (text && onLine(JSON.parse(text) as TapLine) === false) return;
        }
      }
    } catch (e) {
      if (ac.signal.aborted) return;
      throw new WeftError('WEFT_ERR_TAP', `the tap stream from ${t.controller} broke: ${(e as { cause?: Error }).cause?.message ?? (e as Error).message}; run the command again`);
    }
    // the controller never ends a tap itself: it stopped (restart, upgrade)
    if (!ac.signal.aborted) throw new WeftError('WEFT_ERR_TAP', `the controller at ${t.controller} ended the tap (did it restart? see weft check); run the command again`);
  } finally {
    if (timer) clearTimeout(timer);
    signal.removeEventListener('abort', stop);
    ac.abort();
  }
}

async function refusal(t: Target, res: Response): Promise<WeftError> {
  const body = (await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
  const msg = body.error?.message ?? `HTTP ${res.status}`;
  if (res.status === 404) return new WeftError('WEFT_ERR_TAP', `the controller at ${t.controller} has no tap API (${msg}); it is older than this weft command: upgrade it`);
  if (res.status === 401) return new WeftError('WEFT_ERR_OPERATOR_AUTH', `${msg}; pass --token-file FILE (or WEFT_OPERATOR_TOKEN) with the controller's operator token`);
  return new WeftError(body.error?.code ?? 'WEFT_ERR_TAP', msg);
}

/** What to say on stderr about the first line: agents the tap could not reach. */
export function startWarnings(l: TapLine): string[] {
  if (l.type !== 'start') return [];
  const out: string[] = [];
  if (!l.nodes.length) out.push('no agent has a tap stream to this controller yet: requests show once agents connect (weft check)');
  if (l.missing.length) out.push(`not tapped: ${l.missing.join(', ')} (the agent is not connected to this controller; with several controller replicas each taps the agents connected to it)`);
  return out;
}
