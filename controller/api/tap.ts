// GET /api/v1/tap?selector=ns[/workload]&to=&pod=&path=&method=&status=&maxRps=  (`weft tap`, `weft top`)
// A live stream of requests as the agents see them, newline-delimited JSON (common/tap.ts TapLine): a
// "start" line (the agents asked, and the mesh's nodes not reachable from this controller), then one
// "request" line per request view and "drops" lines with what was left out. The tap lasts as long as the
// HTTP response: when the caller goes away it is stopped on every agent. Taps show live paths, identities
// and headers, so they need what writes need: the operator token, or loopback without one.
import type { IncomingMessage, ServerResponse } from 'node:http';

import { isWeftError, WeftConfigError } from '../../common/errors.js';
import { parseMaxRps, parseTapFilter, type TapDrops, type TapStart } from '../../common/tap.js';
import type { TapBroker } from '../tap/broker.js';
import { operatorAuthorizer } from './operator-auth.js';

export const TAP_PATH = '/api/v1/tap';
/** a tapper this far behind (bytes unsent) loses events, counted, rather than the controller's memory */
const MAX_UNSENT = 1024 * 1024;

export interface TapHandlerOptions {
  broker: TapBroker;
  /** the mesh's node names (from the config in force), to say which agents this controller cannot tap */
  nodes: () => string[];
  operatorToken?: string;
}

function fail(res: ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } }) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function createTapHandler(o: TapHandlerOptions): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const authorized = operatorAuthorizer(o.operatorToken);
  return async (req, res) => {
    const url = new URL((req.url ?? '/').replace(/^\/+/, '/'), 'http://localhost');
    if (url.pathname !== TAP_PATH) return false;
    if (req.method !== 'GET') {
      fail(res, 405, 'WEFT_ERR_CONFIG', `${TAP_PATH} takes GET`);
      return true;
    }
    if (!authorized(req)) {
      fail(res, 401, 'WEFT_ERR_OPERATOR_AUTH', o.operatorToken ? 'missing or wrong operator token (Authorization: Bearer <token>)' : 'taps are allowed from loopback only unless the controller has --operator-token-file');
      return true;
    }
    const q = url.searchParams;
    const known = new Set(['selector', 'to', 'pod', 'path', 'method', 'status', 'maxRps']);
    let filter, maxRps;
    try {
      for (const k of q.keys()) if (!known.has(k)) throw new WeftConfigError(`${TAP_PATH}`, `unknown parameter "${k}"`);
      filter = parseTapFilter({ selector: q.get('selector') ?? undefined, to: q.get('to') ?? undefined, pod: q.get('pod') ?? undefined, path: q.get('path') ?? undefined, method: q.get('method') ?? undefined, status: q.get('status') ?? undefined });
      maxRps = parseMaxRps(q.get('maxRps') ?? undefined);
    } catch (e) {
      if (!isWeftError(e)) throw e;
      fail(res, 400, e.code, e.message);
      return true;
    }
    let controllerDrops = 0;
    const line = (s: string) => {
      if (res.writableLength > MAX_UNSENT) {
        controllerDrops++;
        return;
      }
      res.write(s + '\n');
    };
    let handle;
    try {
      handle = o.broker.openTap(filter, maxRps, {
        event: (_node, json) => line(json),
        drops: (d: TapDrops) => line(JSON.stringify(d)),
      });
    } catch (e) {
      if (!isWeftError(e)) throw e;
      fail(res, 429, e.code, e.message);
      return true;
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    const tapped = new Set(handle.nodes);
    const start: TapStart = { type: 'start', id: handle.id, maxRps, nodes: handle.nodes, missing: o.nodes().filter((n) => !tapped.has(n)).sort() };
    res.write(JSON.stringify(start) + '\n');
    // what this controller could not pass on, once a second (the agents report their own drops)
    const report = setInterval(() => {
      if (!controllerDrops || res.writableLength > MAX_UNSENT) return;
      const d: TapDrops = { type: 'drops', node: '', queue: 0, rate: 0, controller: controllerDrops };
      controllerDrops = 0;
      res.write(JSON.stringify(d) + '\n');
    }, 1000);
    const h = handle;
    res.on('close', () => {
      clearInterval(report);
      h.close();
    });
    return true;
  };
}
