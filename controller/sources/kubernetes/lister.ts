// Paginated LIST of one collection, returning the objects exactly as the API server sent them (plain JSON,
// every field kept) and the list's resourceVersion, from which the watch resumes.
//
// The generated typed clients of @kubernetes/client-node deserialize into model classes (dates become Date
// objects, unknown fields are dropped), so lists go over node:http(s) with the client library's own
// authentication and TLS settings (KubeConfig.applyToHTTPSOptions: bearer tokens, exec plugins, client
// certificates, CA). Watches use the library's Watch.
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { WeftError } from '../../../common/errors.js';
import type { KubeObject } from '../types.js';

/** A Kubernetes API request failed; `statusCode` is the HTTP status (0: no response). */
export class KubeApiError extends WeftError {
  readonly statusCode: number;
  readonly reason: string | undefined;
  constructor(statusCode: number, path: string, message: string, reason?: string, options?: { cause?: unknown }) {
    super('WEFT_ERR_KUBE_API', `Kubernetes API ${path}: ${message}`, { ...options, details: { statusCode, path, ...(reason ? { reason } : {}) } });
    this.statusCode = statusCode;
    this.reason = reason;
  }
}

export interface ListResult {
  items: KubeObject[];
  resourceVersion: string;
}

export interface ListOptions {
  /** objects per page (the API server's `limit`) */
  pageSize: number;
  /** per-request timeout */
  timeoutMs: number;
  /** kind and apiVersion for the items: the API server omits them from list items of built-in types */
  kind: string;
  apiVersion: string;
  /** abandons the list (the source is stopping) */
  signal?: AbortSignal;
}

interface RawList {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: KubeObject[] | null;
}

async function getJson(kc: KubeConfig, path: string, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new KubeApiError(0, path, 'the kubeconfig has no current cluster; set current-context or run in a pod');
  const url = new URL(cluster.server.replace(/\/+$/, '') + path);
  const opts: https.RequestOptions = { method: 'GET', headers: { Accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  const mod = url.protocol === 'http:' ? http : https;
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { ...opts, timeout: timeoutMs, ...(signal ? { signal } : {}) } as http.RequestOptions, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => reject(new KubeApiError(0, path, `response interrupted: ${e.message}`, undefined, { cause: e })));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown;
        try {
          parsed = JSON.parse(body);
        } catch {
          parsed = undefined;
        }
        const status = res.statusCode ?? 0;
        if (status === 200 && parsed !== undefined) return resolve(parsed);
        // a metav1.Status body says why (NotFound, Forbidden, Expired, ...)
        const st = (parsed ?? {}) as { message?: string; reason?: string };
        const msg = st.message ?? (status === 200 ? 'response is not JSON' : `HTTP ${status}`);
        reject(new KubeApiError(status === 200 ? 0 : status, path, msg, st.reason));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => reject(new KubeApiError(0, path, e.message, undefined, { cause: e })));
    req.end();
  });
}

/**
 * LIST a whole collection page by page. A continue token that expired meanwhile (410) restarts the list
 * from the beginning, as client-go's pager does, so the result is always one consistent snapshot.
 */
export async function listAll(kc: KubeConfig, path: string, o: ListOptions): Promise<ListResult> {
  for (let attempt = 0; ; attempt++) {
    const items: KubeObject[] = [];
    let cont: string | undefined;
    let rv = '';
    try {
      do {
        const q = new URLSearchParams({ limit: String(o.pageSize) });
        if (cont) q.set('continue', cont);
        const page = (await getJson(kc, `${path}?${q}`, o.timeoutMs, o.signal)) as RawList;
        for (const it of page.items ?? []) items.push(normalize(it, o.kind, o.apiVersion));
        rv = page.metadata?.resourceVersion ?? rv;
        cont = page.metadata?.continue || undefined;
      } while (cont);
      return { items, resourceVersion: rv };
    } catch (e) {
      if (e instanceof KubeApiError && e.statusCode === 410 && cont && attempt < 3) continue;
      throw e;
    }
  }
}

/**
 * Fill in kind/apiVersion (absent from list items of built-in types) and drop managedFields: they are
 * bookkeeping for server-side apply, never read by Weft, and often the largest part of an object.
 * Never mutates its input.
 */
export function normalize(obj: KubeObject, kind: string, apiVersion: string): KubeObject {
  const out = { ...obj, kind: obj.kind || kind, apiVersion: obj.apiVersion || apiVersion } as KubeObject;
  if (out.metadata && 'managedFields' in out.metadata) {
    const { managedFields: _drop, ...meta } = out.metadata;
    out.metadata = meta as KubeObject['metadata'];
  }
  // a Node's image list (often dozens of entries) is the bulk of it and never read by Weft
  if (out.kind === 'Node' && out.status && typeof out.status === 'object' && 'images' in out.status) {
    const { images: _images, ...status } = out.status as Record<string, unknown>;
    out.status = status;
  }
  return out;
}
