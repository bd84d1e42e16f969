// `weft top [NAMESPACE[/WORKLOAD]]`: the busiest paths, live (linkerd viz top), built on the tap stream
// (cli/tap-client.ts) and aggregated here (cli/top-table.ts). On a terminal the table is redrawn in place
// every --interval; otherwise it is printed again every --interval (plain tables, one after another), and
// -o json writes the table as one JSON object per line, for scripts.
import { WeftConfigError } from '../common/errors.js';
import type { TapLine } from '../common/tap.js';
import { parse, TARGET_HELP, withTarget } from './common.js';
import { ms, pct, rateColor, stdout, table, type Out } from './output.js';
import { DropTotals, parseDuration, runTap, startWarnings, TAP_FLAG_OPTIONS, TAP_FLAGS_HELP, tapRequest } from './tap-client.js';
import { TopTable, type TopRow } from './top-table.js';

export const TOP_HELP = `usage: weft top [NAMESPACE[/WORKLOAD]] [filters] [--interval 1s] [--max-rps N] [--duration D] [-o json]

The busiest paths, live: SOURCE, DESTINATION, METHOD, PATH, COUNT, BEST, WORST, LAST (latency) and SUCCESS
(responses that are not 5xx), from a tap of the proxies (weft tap): each request counted once, as the
caller's proxy saw it (the destination's for callers outside the mesh). Redrawn in place on a
terminal; otherwise a table every --interval; -o json: one JSON object per --interval. Ctrl-C stops it.
Requests over --max-rps are not counted (the header says how many were dropped): raise it to count a
busier mesh exactly.

${TAP_FLAGS_HELP}  --interval D          how often the table is drawn (default 1s)

${TARGET_HELP}`;

export interface TopSnapshot {
  at: string;
  /** requests counted (each once), and views left out because the other proxy's view counts them */
  requests: number;
  dropped: { queue: number; rate: number; controller: number };
  rows: TopRow[];
}

export function renderTop(o: Out, rows: TopRow[], header: string): string {
  const body = rows.map((r) => [r.source, r.destination, r.method, r.path, String(r.count), ms(r.bestMs), ms(r.worstMs), ms(r.lastMs), { text: pct(r.success), ...(rateColor(r.success) ? { color: rateColor(r.success)! } : {}) }]);
  return `${header}\n` + (rows.length ? table(o, ['SOURCE', 'DESTINATION', 'METHOD', 'PATH', 'COUNT', 'BEST', 'WORST', 'LAST', 'SUCCESS'], body) : '(no requests yet)\n');
}

export async function topCommand(argv: string[]): Promise<number> {
  const { values, positionals, format } = parse('top', argv, { ...TAP_FLAG_OPTIONS, interval: { type: 'string' } });
  if (values.help) {
    process.stdout.write(TOP_HELP);
    return 0;
  }
  if (format === 'yaml' || format === 'wide') throw new WeftConfigError('-o', `weft top writes a table or -o json, not ${format}`);
  const req = tapRequest(values, positionals, 'top');
  const intervalMs = parseDuration('--interval', (values.interval as string | undefined) ?? '1s')!;
  const o = stdout();
  const live = format === 'table' && !!process.stdout.isTTY;
  const agg = new TopTable();
  const drops = new DropTotals();
  let maxRps = 0;
  const snapshot = (): TopSnapshot => ({ at: new Date().toISOString(), requests: agg.counted, dropped: { queue: drops.queue, rate: drops.rate, controller: drops.controller }, rows: agg.top() });
  // off a terminal, the last table is not printed again at the end when nothing changed since
  let drawn = '';
  const draw = (final: boolean) => {
    const state = `${agg.counted}/${agg.skipped}/${drops.total}`;
    if (final && !live && drawn === state) return;
    drawn = state;
    if (format === 'json') return o.write(JSON.stringify(snapshot()) + '\n');
    const header = `${new Date().toISOString().slice(11, 19)}  ${agg.counted} request${agg.counted === 1 ? '' : 's'}, ${drops.describe(maxRps)}${live && !final ? '  (Ctrl-C to quit)' : ''}`;
    // on a terminal, only the rows that fit
    const rows = agg.top(live && !final ? Math.max(1, (process.stdout.rows ?? 24) - 3) : Infinity);
    const text = renderTop(o, rows, header);
    o.write(live && !final ? `\u001b[H\u001b[2J${text}` : `${text}\n`);
  };
  const ac = new AbortController();
  const onSig = () => ac.abort();
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  if (live) {
    o.write('\u001b[?1049h'); // the terminal's alternate screen: the shell's scrollback stays as it was
    draw(false);
  }
  const timer = setInterval(() => draw(false), intervalMs);
  try {
    await withTarget(values, false, (t) =>
      runTap(
        t,
        req,
        (l: TapLine) => {
          if (l.type === 'start') {
            maxRps = l.maxRps;
            for (const w of startWarnings(l)) process.stderr.write(`weft top: ${w}\n`);
          } else if (l.type === 'drops') drops.add(l);
          else agg.add(l);
        },
        ac.signal,
      ),
    );
  } finally {
    clearInterval(timer);
    if (live) o.write('\u001b[?1049l');
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  }
  draw(true);
  return 0;
}
