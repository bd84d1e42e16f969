// One list/watch loop for one collection, with the semantics of client-go's reflector:
//   LIST (paginated) → replaceAll of that kind → WATCH from the list's resourceVersion with bookmarks;
//   every event and bookmark advances the resourceVersion; a closed or dropped watch resumes from it;
//   410 Gone ("too old resource version", as an ERROR event or an HTTP status) → LIST again;
//   failures retry with exponential backoff and jitter; a CRD that is not installed (404) is logged once
//   and looked for again every `crdRetryMs`.
// An object the sink refuses (invalid) is logged with the error and skipped; the loop never throws.
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { errorMessage } from '../../../common/errors.js';
import type { Logger } from '../../../common/log.js';
import type { KubeObject, ObjectRef, ObjectSink } from '../types.js';
import { collectionPath, type WatchedKind } from './kinds.js';
import { KubeApiError, listAll, normalize } from './lister.js';

export interface ReflectorTiming {
  /** first retry delay after a failure, doubled up to maxBackoffMs (with ±20% jitter) */
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** how often to look again for a CRD that is not installed */
  crdRetryMs: number;
  /** the API server ends each watch after this long (client-go picks 5-10 min); we then resume */
  watchTimeoutSeconds: number;
  /** a watch silent this long (no event, no bookmark) is presumed dead and resumed; default: timeout + 60 s */
  watchIdleMs?: number;
  pageSize: number;
  requestTimeoutMs: number;
}

export const DEFAULT_TIMING: ReflectorTiming = {
  initialBackoffMs: 500,
  maxBackoffMs: 30_000,
  crdRetryMs: 60_000,
  watchTimeoutSeconds: 300,
  pageSize: 500,
  requestTimeoutMs: 60_000,
};

interface WatchEnd {
  err: unknown;
  gone: boolean;
  missing?: boolean;
  /** an ERROR event other than 410 */
  status?: { code?: number; reason?: string; message?: string };
  events: number;
}

interface WatchEvent {
  type?: string;
  object?: KubeObject & { code?: number; reason?: string; message?: string };
}

export type ReflectorState = 'starting' | 'synced' | 'not-installed' | 'failing' | 'stopped';

export class Reflector {
  private rv = '';
  private stopped = false;
  private abortWatch: (() => void) | undefined;
  private readonly listAbort = new AbortController();
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private readonly watch: Watch;
  private readonly path: string;
  private readonly log: Logger;
  private backoffMs: number;
  private lastFailure = '';
  private reportedMissing = false;
  private firstAttempt!: Promise<void>;
  private firstAttemptDone!: () => void;
  state: ReflectorState = 'starting';
  /** counts for status pages and tests */
  readonly stats = { lists: 0, watches: 0, events: 0, refused: 0, relistsOnGone: 0 };

  constructor(
    private readonly kc: KubeConfig,
    readonly kind: WatchedKind,
    private readonly sink: ObjectSink,
    private readonly source: string,
    logger: Logger,
    private readonly timing: ReflectorTiming,
  ) {
    this.watch = new Watch(kc);
    this.path = collectionPath(kind);
    this.log = logger.child('reflector', { kind: kind.kind });
    this.backoffMs = timing.initialBackoffMs;
    this.firstAttempt = new Promise((r) => (this.firstAttemptDone = r));
  }

  /** start the loop; the promise resolves after the first LIST attempt (success, not installed, or failure) */
  start(): Promise<void> {
    this.loop ??= this.run();
    return this.firstAttempt;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abortWatch?.();
    this.listAbort.abort();
    this.wake?.();
    this.firstAttemptDone();
    await this.loop;
    this.state = 'stopped';
  }

  get resourceVersion(): string {
    return this.rv;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (!this.rv) {
        if (!(await this.relist())) continue;
      }
      const end = await this.watchOnce();
      if (this.stopped) break;
      if (end.gone) {
        // the API server compacted past our resourceVersion: only a fresh LIST is consistent again
        this.log.info('watch expired (410 Gone), listing again', { resourceVersion: this.rv });
        this.stats.relistsOnGone++;
        this.rv = '';
        continue;
      }
      if (end.missing) {
        this.rv = '';
        continue;
      }
      if (end.events > 0) this.backoffMs = this.timing.initialBackoffMs;
      if (end.err || end.status) {
        const why = end.status ? `${end.status.reason ?? 'error'}: ${end.status.message ?? ''}` : errorMessage(end.err);
        this.failure(`watch ended: ${why}; resuming from resourceVersion ${this.rv}`);
        if (end.events === 0) await this.sleep(this.nextBackoff());
      } else if (end.events === 0) {
        // an empty, normal close (timeoutSeconds) is routine; don't spin if the server closes at once
        await this.sleep(Math.min(this.timing.initialBackoffMs, 1000));
      }
    }
  }

  /** LIST and hand the snapshot to the sink; false when it failed (after waiting the retry delay) */
  private async relist(): Promise<boolean> {
    try {
      this.stats.lists++;
      const { items, resourceVersion } = await listAll(this.kc, this.path, {
        pageSize: this.timing.pageSize,
        timeoutMs: this.timing.requestTimeoutMs,
        kind: this.kind.kind,
        apiVersion: this.kind.apiVersion,
        signal: this.listAbort.signal,
      });
      if (this.stopped) return false;
      const { refused } = this.sink.replaceAll([this.kind.kind], items, this.source);
      for (const r of refused) this.refusedObject(r.ref, r.error);
      this.rv = resourceVersion;
      if (this.state === 'not-installed') this.log.info('custom resource is now installed', { apiVersion: this.kind.apiVersion });
      if (this.state !== 'synced') this.log.info('listed', { objects: items.length, refused: refused.length, resourceVersion });
      this.state = 'synced';
      this.reportedMissing = false;
      this.lastFailure = '';
      this.firstAttemptDone();
      return true;
    } catch (e) {
      if (this.stopped) return false;
      if (this.kind.crd && e instanceof KubeApiError && e.statusCode === 404) {
        // the CRD is not installed: say so once, keep what we had, look again later
        // deleted while we watched it: its objects went with it
        if (this.state === 'synced') this.sink.replaceAll([this.kind.kind], [], this.source);
        if (!this.reportedMissing) {
          this.log.warn('custom resource not installed in the cluster; will look again', {
            apiVersion: this.kind.apiVersion,
            retryInSeconds: Math.round(this.timing.crdRetryMs / 1000),
            hint: `install the CRD for ${this.kind.plural}.${this.kind.apiVersion.split('/')[0]} to use ${this.kind.kind}`,
          });
          this.reportedMissing = true;
        }
        this.state = 'not-installed';
        this.firstAttemptDone();
        await this.sleep(this.timing.crdRetryMs);
        return false;
      }
      this.state = 'failing';
      this.failure(`list failed: ${errorMessage(e)}`);
      this.firstAttemptDone();
      await this.sleep(this.nextBackoff());
      return false;
    }
  }

  private watchOnce(): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      const end: WatchEnd = { err: null, gone: false, events: 0 };
      let settled = false;
      let controller: AbortController | undefined;
      let abortRequested = false;
      // a connection that died without a FIN sends nothing, not even the bookmarks the API server sends
      // about every minute: past the server-side timeout plus a margin, give up on it and resume
      let idle: NodeJS.Timeout | undefined;
      const idleMs = this.timing.watchIdleMs ?? (this.timing.watchTimeoutSeconds + 60) * 1000;
      const armIdle = () => {
        if (idle) clearTimeout(idle);
        idle = setTimeout(() => {
          if (settled) return;
          end.err = new Error(`no event or bookmark for ${idleMs} ms`);
          settled = true;
          abortRequested = true;
          this.abortWatch = undefined;
          controller?.abort();
          resolve(end);
        }, idleMs);
        idle.unref?.();
      };
      armIdle();
      const finish = (err: unknown) => {
        if (idle) clearTimeout(idle);
        if (settled) return;
        settled = true;
        this.abortWatch = undefined;
        // an abort we asked for (ERROR event, stop) is not a failure of its own
        end.err = abortRequested ? null : err;
        resolve(end);
      };
      const abort = () => {
        abortRequested = true;
        if (controller) controller.abort();
      };
      this.abortWatch = abort;
      const onEvent = (type: string, obj: WatchEvent['object']) => {
        if (settled || !obj) return;
        armIdle();
        this.stats.events++;
        if (type === 'ERROR') {
          // a metav1.Status: 410 Expired/Gone means our resourceVersion is too old
          if (obj.code === 410) end.gone = true;
          else end.status = { code: obj.code, reason: obj.reason, message: obj.message };
          abort();
          return;
        }
        end.events++;
        this.handleEvent(type, obj);
      };
      this.stats.watches++;
      this.watch
        .watch(
          this.path,
          { resourceVersion: this.rv, allowWatchBookmarks: true, timeoutSeconds: this.timing.watchTimeoutSeconds },
          onEvent,
          (err: unknown) => {
            const code = (err as { statusCode?: number } | null)?.statusCode;
            if (code === 410) end.gone = true;
            // a CRD deleted while watched: list again, which notices it is gone and waits for it
            if (code === 404) end.missing = true;
            finish(err);
          },
        )
        .then(
          (c) => {
            controller = c;
            if (abortRequested || this.stopped) c.abort();
          },
          (e: unknown) => finish(e),
        );
    });
  }

  private handleEvent(type: string, raw: KubeObject): void {
    const obj = normalize(raw, this.kind.kind, this.kind.apiVersion);
    const rv = obj.metadata?.resourceVersion;
    try {
      switch (type) {
        case 'ADDED':
        case 'MODIFIED':
          this.sink.upsert(obj, this.source);
          break;
        case 'DELETED':
          this.sink.delete(refOf(obj), this.source);
          break;
        case 'BOOKMARK':
          // carries only a resourceVersion: where to resume without replaying
          break;
        default:
          this.log.warn('unknown watch event type ignored', { type });
      }
    } catch (e) {
      this.refusedObject(refOf(obj), e);
    } finally {
      if (rv) this.rv = rv;
    }
  }

  private refusedObject(ref: ObjectRef, e: unknown): void {
    this.stats.refused++;
    this.log.warn('object refused, skipped; the last good config stays in force', {
      object: `${ref.kind} ${ref.namespace ? ref.namespace + '/' : ''}${ref.name}`,
      error: errorMessage(e),
    });
  }

  private failure(msg: string): void {
    // a repeated identical failure is logged at debug, so an API server outage doesn't flood the logs
    if (msg !== this.lastFailure) this.log.warn(msg);
    else this.log.debug(msg);
    this.lastFailure = msg;
  }

  private nextBackoff(): number {
    const base = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.timing.maxBackoffMs);
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }
}

function refOf(obj: KubeObject): ObjectRef {
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    name: obj.metadata?.name ?? '',
    ...(obj.metadata?.namespace ? { namespace: obj.metadata.namespace } : {}),
  };
}
