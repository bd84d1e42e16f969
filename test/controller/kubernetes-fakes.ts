// Test doubles for the Kubernetes source: a fake kube-apiserver (node:http on loopback) that replays recorded
// list and watch streams from test/fixtures/kube in the API server's wire format, and a recording sink that
// validates like the controller's store (throws WeftConfigError, changes nothing).
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { WeftConfigError } from '../../common/errors.js';
import type { KubeObject, ObjectRef, ObjectSink } from '../../controller/sources/types.js';
import { repoRoot } from '../helpers/paths.js';

export const FIXTURES = join(repoRoot, 'test', 'fixtures', 'kube');
export const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
export const fixtureJson = (name: string): unknown => JSON.parse(fixture(name));

export interface ListReply {
  status?: number;
  body: unknown;
}

export interface WatchReply {
  /** recorded stream lines (already JSON) */
  stream: string;
  /** close: normal end of the response; drop: socket destroyed after the last (possibly partial) line; hold: stays open */
  end: 'close' | 'drop' | 'hold';
  status?: number;
}

interface Route {
  lists: ListReply[];
  watches: WatchReply[];
  current?: ListReply | undefined;
}

export interface LoggedRequest {
  path: string;
  query: Record<string, string>;
  auth: string | undefined;
}

export class FakeApiServer {
  readonly requests: LoggedRequest[] = [];
  private readonly routes = new Map<string, Route>();
  private readonly sockets = new Set<Socket>();
  private readonly openWatches = new Map<string, Set<http.ServerResponse>>();
  private readonly server = http.createServer((req, res) => this.handle(req, res));
  port = 0;

  constructor(readonly token = 'weft-test-token') {
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  /** queue replies for a collection; the last list reply repeats, watches past the queue hold open */
  route(path: string, r: Partial<Route>): void {
    const cur = this.routes.get(path) ?? { lists: [], watches: [] };
    cur.lists.push(...(r.lists ?? []));
    cur.watches.push(...(r.watches ?? []));
    this.routes.set(path, cur);
  }

  /** the collection disappears (its CRD deleted): open watches end, later requests get 404 */
  remove(path: string): void {
    this.routes.delete(path);
    for (const res of this.openWatches.get(path) ?? []) res.end();
    this.openWatches.delete(path);
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: `http://127.0.0.1:${this.port}`, skipTLSVerify: true }],
      users: [{ name: 'weft-controller', token: this.token }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'weft-controller' }],
      currentContext: 'fake',
    });
    return kc;
  }

  requestsFor(path: string, watch: boolean): LoggedRequest[] {
    return this.requests.filter((r) => r.path === path && (r.query.watch === 'true') === watch);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(url.searchParams);
    const auth = req.headers.authorization;
    this.requests.push({ path: url.pathname, query, auth });
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (auth !== `Bearer ${this.token}`) {
      return json(401, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
    }
    const route = this.routes.get(url.pathname);
    if (!route) return json(404, fixtureJson('status-404.json'));
    if (query.watch === 'true') return this.serveWatch(url.pathname, route, res);
    // a list's later pages (continue=...) come from the same snapshot as its first page
    const reply = query.continue !== undefined && route.current ? route.current : route.lists.length > 1 ? route.lists.shift() : route.lists[0];
    route.current = reply;
    if (!reply) return json(404, fixtureJson('status-404.json'));
    if ((reply.status ?? 200) !== 200) return json(reply.status!, reply.body);
    json(200, paginate(reply.body as PagedList, Number(query.limit) || 0, query.continue));
  }

  private serveWatch(path: string, route: Route, res: http.ServerResponse): void {
    const open = this.openWatches.get(path) ?? new Set();
    this.openWatches.set(path, open);
    open.add(res);
    res.on('close', () => open.delete(res));
    const w = route.watches.shift() ?? { stream: '', end: 'hold' as const };
    if (w.status && w.status !== 200) {
      res.writeHead(w.status, { 'Content-Type': 'application/json' });
      res.end(w.stream);
      return;
    }
    // kube-apiserver streams watch events as chunked JSON lines
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const lines = w.stream.split('\n');
    const trailingNewline = w.stream.endsWith('\n');
    if (trailingNewline) lines.pop();
    let i = 0;
    const next = () => {
      if (res.destroyed) return;
      if (i < lines.length) {
        const last = i === lines.length - 1;
        res.write(lines[i] + (last && !trailingNewline ? '' : '\n'));
        i++;
        setTimeout(next, 5);
        return;
      }
      if (w.end === 'close') res.end();
      else if (w.end === 'drop') res.socket?.destroy();
    };
    setTimeout(next, 5);
  }
}

interface PagedList {
  metadata: { resourceVersion?: string; continue?: string };
  items: unknown[];
}

/** the API server's chunked list: `limit` items per page, an opaque continue token for the rest */
function paginate(list: PagedList, limit: number, cont: string | undefined): PagedList {
  if (!limit) return list;
  const start = cont ? Number(Buffer.from(cont, 'base64').toString().split(':')[1]) : 0;
  const items = list.items.slice(start, start + limit);
  const more = start + limit < list.items.length;
  return {
    ...list,
    metadata: { ...list.metadata, ...(more ? { continue: Buffer.from(`rv${list.metadata.resourceVersion}:${start + limit}`).toString('base64') } : {}) },
    items,
  };
}

export type SinkCall =
  | { op: 'upsert'; key: string; rv?: string; refused?: string }
  | { op: 'delete'; key: string }
  | { op: 'replaceAll'; kinds: string[]; keys: string[]; refused: string[] };

const keyOf = (o: { kind: string; namespace?: string; name: string }) => `${o.kind}:${o.namespace ? o.namespace + '/' : ''}${o.name}`;

/** Records what the source fed it; holds the current objects; refuses objects `validate` finds invalid. */
export class RecordingSink implements ObjectSink {
  readonly calls: SinkCall[] = [];
  readonly objects = new Map<string, KubeObject>();

  constructor(private readonly validate: (o: KubeObject) => WeftConfigError | undefined = () => undefined) {}

  upsert(obj: KubeObject, source: string): void {
    const key = keyOf({ kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name });
    const err = source === 'kubernetes' ? this.validate(obj) : new WeftConfigError(key, `unexpected source ${source}`);
    this.calls.push({ op: 'upsert', key, rv: obj.metadata.resourceVersion, ...(err ? { refused: err.message } : {}) });
    this.notify();
    if (err) throw err;
    this.objects.set(key, obj);
    this.notify();
  }

  delete(ref: ObjectRef): void {
    const key = keyOf(ref);
    this.objects.delete(key);
    this.calls.push({ op: 'delete', key });
    this.notify();
  }

  replaceAll(kinds: string[], objs: KubeObject[]): { refused: { ref: ObjectRef; error: Error }[] } {
    const refused: { ref: ObjectRef; error: Error }[] = [];
    for (const k of [...this.objects.keys()]) if (kinds.includes(k.split(':')[0])) this.objects.delete(k);
    for (const o of objs) {
      const ref = { apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name, namespace: o.metadata.namespace };
      const err = this.validate(o);
      if (err) refused.push({ ref, error: err });
      else this.objects.set(keyOf(ref), o);
    }
    this.calls.push({ op: 'replaceAll', kinds, keys: objs.map((o) => keyOf({ kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name })), refused: refused.map((r) => r.error.message) });
    this.notify();
    return { refused };
  }

  /** resolves when pred() holds, rejects after ms with the calls seen so far */
  until(pred: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
    return waitFor(pred, ms, what, () => JSON.stringify(this.calls));
  }

  private notify(): void {}
}

/** poll pred every 10 ms until it holds or ms pass */
export async function waitFor(pred: () => boolean, ms: number, what: string, detail: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} ${detail()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
