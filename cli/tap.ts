// `weft tap [NAMESPACE[/WORKLOAD]]`: a live stream of requests as the proxies see them (linkerd viz tap),
// through the controller's tap API (controller/api/tap.ts), one line per request view; -o json: the
// stream's lines as they come (start, request, drops), for scripts.
import { WeftConfigError } from '../common/errors.js';
import type { TapLine } from '../common/tap.js';
import { parse, TARGET_HELP, withTarget } from './common.js';
import { stdout } from './output.js';
import { DropTotals, runTap, startWarnings, TAP_FLAG_OPTIONS, TAP_FLAGS_HELP, tapRequest } from './tap-client.js';
import { formatTapEvent } from './tap-format.js';

export const TAP_HELP = `usage: weft tap [NAMESPACE[/WORKLOAD]] [filters] [--max-rps N] [--duration D] [-n COUNT] [-o json]

A live stream of requests as the node proxies see them: each request once per proxy that handled it
(dir=out: the caller's node, dir=in: the destination's), with source and destination (namespace/workload,
pod, SPIFFE ID), tls (mTLS between the proxies), method, authority, path, status, latency, bytes and
Envoy's response flags. Never request bodies; authorization, proxy-authorization, cookie and set-cookie
values are never shown (-o json carries the other request headers). Ctrl-C stops it; requests left out
(rate cap, full queues) are counted and reported on stderr.

${TAP_FLAGS_HELP}  -n, --count N         stop after N requests

${TARGET_HELP}`;

export async function tapCommand(argv: string[]): Promise<number> {
  const { values, positionals, format } = parse('tap', argv, { ...TAP_FLAG_OPTIONS, count: { type: 'string', short: 'n' } });
  if (values.help) {
    process.stdout.write(TAP_HELP);
    return 0;
  }
  if (format === 'yaml' || format === 'wide') throw new WeftConfigError('-o', `weft tap streams lines: use -o json (or no -o), not ${format}`);
  const req = tapRequest(values, positionals, 'tap');
  const count = values.count === undefined ? undefined : Number(values.count);
  if (count !== undefined && !(Number.isInteger(count) && count > 0)) throw new WeftConfigError('--count', `"${String(values.count)}" is not a whole number above 0`);
  const o = stdout();
  const drops = new DropTotals();
  let shown = 0;
  let maxRps = 0;
  const ac = new AbortController();
  const onSig = () => ac.abort();
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  // drop counts arrive with every batch; said on stderr at most every 5 s, and at the end
  let said = 0;
  const sayDrops = () => {
    if (drops.total > said) process.stderr.write(`weft tap: ${drops.describe(maxRps)} so far\n`);
    said = drops.total;
  };
  const timer = format === 'json' ? undefined : setInterval(sayDrops, 5000);
  try {
    await withTarget(values, false, (t) =>
      runTap(
        t,
        req,
        (l: TapLine) => {
          if (format === 'json') o.write(JSON.stringify(l) + '\n');
          if (l.type === 'start') {
            maxRps = l.maxRps;
            for (const w of startWarnings(l)) process.stderr.write(`weft tap: ${w}\n`);
          } else if (l.type === 'drops') drops.add(l);
          else {
            if (format !== 'json') o.write(formatTapEvent(o, l));
            if (count !== undefined && ++shown >= count) return false;
          }
          return true;
        },
        ac.signal,
      ),
    );
  } finally {
    if (timer) clearInterval(timer);
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  }
  if (format !== 'json' && drops.total) process.stderr.write(`weft tap: ${drops.describe(maxRps)}\n`);
  return 0;
}
