// One small HTTP listener per operator endpoint (admin, metrics, health). They are separate listeners,
// as in Istio, so admin can stay on loopback while metrics and readiness are reachable by Prometheus and
// the kubelet, and a slow scrape never delays a readiness probe.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../common/log.js';
import { ListenError } from '../proxy/errors.js';

export type Route = (req: http.IncomingMessage, url: URL) => Promise<{ status: number; type: string; body: string } | undefined> | { status: number; type: string; body: string } | undefined;

export interface Listening {
  server: http.Server;
  address: { host: string; port: number };
  close(): Promise<void>;
}

export function json(body: unknown, status = 200): { status: number; type: string; body: string } {
  return { status, type: 'application/json', body: JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n' };
}

/** Binds a server (the agent passes a SO_REUSEPORT binder so a successor agent can start beside it). */
export type ListenFn = (server: import('node:net').Server, what: string, a: { host: string; port: number }) => Promise<{ host: string; port: number }>;

export async function serveHttp(what: string, host: string, port: number, route: Route, log: Logger, listen?: ListenFn): Promise<Listening> {
  const server = http.createServer((req, res) => {
    // collapse repeated slashes: `GET //` would otherwise parse as a protocol-relative URL and throw
    const url = new URL((req.url ?? '/').replace(/^\/{2,}/, '/'), 'http://localhost');
    Promise.resolve()
      .then(() => (req.method === 'GET' || req.method === 'HEAD' ? route(req, url) : { status: 405, type: 'text/plain', body: 'only GET\n' }))
      .then(
        (r) => {
          const out = r ?? { status: 404, type: 'text/plain', body: `no such page: ${url.pathname}\n` };
          res.writeHead(out.status, { 'content-type': out.type, 'content-length': Buffer.byteLength(out.body) });
          res.end(req.method === 'HEAD' ? undefined : out.body);
        },
        (err: unknown) => {
          log.warn(`${what} request failed`, { path: url.pathname, error: err });
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`${(err as Error)?.message ?? err}\n`);
        },
      );
  });
  server.keepAliveTimeout = 5000;
  if (listen) await listen(server, what, { host, port });
  else {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new ListenError(what, `${host}:${port}`, err)));
      server.listen(port, host, () => resolve());
    });
  }
  const a = server.address() as AddressInfo;
  log.info(`${what} listening`, { address: `${a.address}:${a.port}` });
  return {
    server,
    address: { host: a.address, port: a.port },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
