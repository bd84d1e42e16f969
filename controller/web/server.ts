// The controller's operator HTTP server (port 15014): the agents page, its JSON API and a live stream.
//   GET /                      the page (self-contained HTML, live via server-sent events)
//   GET /api/v1/agents         every node's agent: connection, config version, ACK/NACK, certificate expiry,
//                              counters, last report, and the problems the page flags
//   GET /api/v1/agents/stream  server-sent events: `agents` (the same payload plus config and status) on every
//                              registry change (coalesced) and every few seconds (time-based flags move)
//   GET /api/v1/config         the current config version summary (when a provider is given)
//   GET /api/v1/status         the extra status providers (e.g. the Kubernetes source's collections)
//   GET /healthz               "ok"
// Read-only: anything but GET/HEAD is refused, unless one of the `handlers` given (tried first) answers it.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AgentRegistry } from '../agents/registry.js';
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { agentsPayload, type AgentsPayload, type ViewThresholds } from './agent-view.js';
import { PAGE_CSP, PAGE_HTML } from './page.js';

export type { AgentsPayload, AgentView, Problem, ProblemKind, ViewThresholds } from './agent-view.js';

export interface ConfigSummary {
  version: number;
  [k: string]: unknown;
}

export type StatusProvider = () => unknown | Promise<unknown>;

/** answers a request itself (true) or leaves it to the next handler (false) */
export type HttpHandler = (req: http.IncomingMessage, res: http.ServerResponse) => boolean | Promise<boolean>;

export interface WebServerOptions {
  registry: AgentRegistry;
  logger: Logger;
  /** named extra status shown on the page (in a collapsible section) and at /api/v1/status */
  statusProviders?: Record<string, StatusProvider>;
  /** tried in order before the page's own routes (e.g. the admin write API: POST /api/v1/apply) */
  handlers?: HttpHandler[];
  /** the current config version summary, for /api/v1/config and the page header */
  configSummary?: () => ConfigSummary | Promise<ConfigSummary>;
  /** default 6 h: with the default 24 h lifetime rotated at half life, a healthy agent never gets below 12 h */
  certExpiryWarningSeconds?: number;
  /** default 30 s (agents report every few seconds) */
  staleReportSeconds?: number;
  /** periodic refresh of the live stream, default 5 s */
  refreshSeconds?: number;
  /** shortest interval between two stream updates caused by registry changes, default 250 ms */
  coalesceMs?: number;
  now?: () => number;
}

export interface WebServer {
  readonly server: http.Server;
  /** listen (default: port 15014 on all addresses); resolves with the bound address */
  listen(port?: number, host?: string): Promise<{ port: number; address: string }>;
  close(): Promise<void>;
  /** the payload of /api/v1/agents, as of now */
  agents(): AgentsPayload;
  /** number of open live-stream clients */
  streamClients(): number;
}

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

/**
 * The path of a request target. `new URL('//x', base)` reads a leading `//` as a host (protocol-relative),
 * so `GET //` failed with "Invalid URL": repeated slashes are collapsed first, as web servers do.
 */
export function requestPath(target: string | undefined): string {
  const raw = (target ?? '/').split(/[?#]/, 1)[0]!.replace(/\/{2,}/g, '/');
  try {
    return new URL(raw.startsWith('/') ? raw : `/${raw}`, 'http://localhost').pathname;
  } catch {
    return raw;
  }
}

export function createWebServer(opts: WebServerOptions): WebServer {
  const log = opts.logger.child('web');
  const now = opts.now ?? Date.now;
  const th: ViewThresholds = {
    certExpiryWarningSeconds: opts.certExpiryWarningSeconds ?? 6 * 3600,
    staleReportSeconds: opts.staleReportSeconds ?? 30,
  };
  const clients = new Set<http.ServerResponse>();
  const agents = () => agentsPayload(opts.registry.list(), now(), th);

  async function statuses(): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const [name, fn] of Object.entries(opts.statusProviders ?? {})) {
      try {
        out[name] = await fn();
      } catch (e) {
        out[name] = { error: errorMessage(e) };
      }
    }
    return out;
  }

  async function config(): Promise<ConfigSummary | { error: string } | undefined> {
    if (!opts.configSummary) return undefined;
    try {
      return await opts.configSummary();
    } catch (e) {
      return { error: errorMessage(e) };
    }
  }

  // --- live stream: one coalesced snapshot per change burst, plus a periodic refresh
  let pending: NodeJS.Timeout | undefined;
  let lastSent = 0;
  const coalesceMs = opts.coalesceMs ?? 250;
  async function broadcast(): Promise<void> {
    pending = undefined;
    lastSent = Date.now();
    if (!clients.size) return;
    const data = await streamPayload();
    for (const res of clients) send(res, data);
  }
  function scheduleBroadcast(): void {
    if (pending || !clients.size) return;
    pending = setTimeout(() => void broadcast(), Math.max(0, lastSent + coalesceMs - Date.now()));
  }
  async function streamPayload(): Promise<string> {
    const [cfg, status] = await Promise.all([config(), statuses()]);
    return JSON.stringify({ ...agents(), ...(cfg ? { config: cfg } : {}), ...(Object.keys(status).length ? { status } : {}) });
  }
  function send(res: http.ServerResponse, data: string): void {
    // a client that does not read is dropped rather than buffered without bound
    if (res.writableLength > 4 * 1024 * 1024) {
      log.warn('dropping a live-stream client that does not keep up');
      res.destroy();
      return;
    }
    res.write(`event: agents\ndata: ${data}\n\n`);
  }
  const unsubscribe = opts.registry.subscribe(() => scheduleBroadcast());
  const refresh = setInterval(() => {
    if (clients.size) void broadcast();
  }, (opts.refreshSeconds ?? 5) * 1000);
  const heartbeat = setInterval(() => {
    for (const res of clients) res.write(': keep-alive\n\n');
  }, 15_000);
  refresh.unref();
  heartbeat.unref();

  async function openStream(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': 'text/event-stream; charset=utf-8',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    clients.add(res);
    req.on('close', () => clients.delete(res));
    send(res, await streamPayload());
  }

  function json(res: http.ServerResponse, status: number, body: unknown, head: boolean): void {
    const text = JSON.stringify(body, null, 2) + '\n';
    res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
    res.end(head ? undefined : text);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    for (const h of opts.handlers ?? []) if (await h(req, res)) return;
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.setHeader('Allow', 'GET, HEAD');
      return json(res, 405, { error: `${req.method} is not allowed: this API is read-only` }, false);
    }
    const path = requestPath(req.url);
    switch (path) {
      case '/':
      case '/index.html': {
        res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': PAGE_CSP, 'X-Frame-Options': 'DENY' });
        return void res.end(head ? undefined : PAGE_HTML);
      }
      case '/healthz':
        res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
        return void res.end(head ? undefined : 'ok\n');
      case '/api/v1/agents':
        return json(res, 200, agents(), head);
      case '/api/v1/agents/stream':
        return openStream(req, res);
      case '/api/v1/config': {
        const cfg = await config();
        if (!cfg) return json(res, 404, { error: 'this controller has no config summary provider' }, head);
        return json(res, 'error' in cfg ? 500 : 200, cfg, head);
      }
      case '/api/v1/status':
        return json(res, 200, await statuses(), head);
      default:
        return json(res, 404, { error: `no such page: ${path}`, pages: ['/', '/healthz', '/api/v1/agents', '/api/v1/agents/stream', '/api/v1/config', '/api/v1/status'] }, head);
    }
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      log.error('web request failed', { path: req.url, error: e });
      if (!res.headersSent) json(res, 500, { error: errorMessage(e) }, false);
      else res.destroy();
    });
  });

  return {
    server,
    async listen(port = 15014, host?: string) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const a = server.address() as AddressInfo;
      log.info('operator web page listening', { address: a.address, port: a.port });
      return { port: a.port, address: a.address };
    },
    async close() {
      unsubscribe();
      clearInterval(refresh);
      clearInterval(heartbeat);
      if (pending) clearTimeout(pending);
      for (const res of clients) res.end();
      clients.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
    agents,
    streamClients: () => clients.size,
  };
}
