// The CA root kept in a Kubernetes Secret (type Opaque) so a rescheduled controller keeps its identity.
// Keys: root-cert.pem, root-key.pem, previous-roots.json (base64 as Secrets require).
import type { CoreV1Api, V1Secret } from '@kubernetes/client-node';

import { CaRootError } from './errors.js';
import type { CaState, RootStore } from './root-store.js';
import { PREVIOUS_ROOTS_FILE, ROOT_CERT_FILE, ROOT_KEY_FILE } from './root-store.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => (s === undefined ? undefined : Buffer.from(s, 'base64').toString('utf8'));

function statusCode(e: unknown): number | undefined {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** what watch() needs of @kubernetes/client-node's Watch */
export interface SecretWatcher {
  watch(path: string, query: Record<string, string>, onEvent: (type: string, obj: unknown) => void, done: (err: unknown) => void): Promise<{ abort(): void }>;
}

export class KubernetesSecretRootStore implements RootStore {
  constructor(
    private readonly api: Pick<CoreV1Api, 'readNamespacedSecret' | 'createNamespacedSecret' | 'replaceNamespacedSecret'>,
    private readonly namespace: string,
    private readonly name = 'weft-ca-root',
    private readonly watcher?: SecretWatcher,
    private readonly log: { warn(msg: string, f?: Record<string, unknown>): void } = { warn: () => undefined },
  ) {}

  /**
   * Watches the Secret (a replica that rotated the root wrote it): every change is handed to `fn`. A watch
   * that ends (API server restart, timeout) is restarted after a re-read, so no change is missed.
   */
  watch(fn: (state: CaState) => void): () => void {
    const watcher = this.watcher;
    if (!watcher) return () => undefined;
    let stopped = false;
    let current: { abort(): void } | undefined;
    const start = async (): Promise<void> => {
      if (stopped) return;
      try {
        const s = await this.load();
        if (s) fn(s);
        current = await watcher.watch(
          `/api/v1/namespaces/${this.namespace}/secrets`,
          { fieldSelector: `metadata.name=${this.name}` },
          (type, obj) => {
            if (type !== 'ADDED' && type !== 'MODIFIED') return;
            try {
              const st = this.decode(obj as V1Secret);
              if (st) fn(st);
            } catch (e) {
              this.log.warn('ignored an unreadable CA secret update', { secret: this.describe(), err: (e as Error).message });
            }
          },
          (err) => {
            if (stopped) return;
            if (err) this.log.warn('CA secret watch ended; restarting', { secret: this.describe(), err: (err as Error).message ?? String(err) });
            setTimeout(() => void start(), 1000).unref();
          },
        );
      } catch (e) {
        this.log.warn('cannot watch the CA secret; retrying', { secret: this.describe(), err: (e as Error).message });
        setTimeout(() => void start(), 2000).unref();
      }
    };
    void start();
    return () => {
      stopped = true;
      current?.abort();
    };
  }

  describe(): string {
    return `secret ${this.namespace}/${this.name}`;
  }

  async load(): Promise<CaState | undefined> {
    let secret: V1Secret;
    try {
      secret = await this.api.readNamespacedSecret({ name: this.name, namespace: this.namespace });
    } catch (e) {
      if (statusCode(e) === 404) return undefined;
      throw new CaRootError(`cannot read ${this.describe()}: ${(e as Error).message}; check the controller's RBAC (get secrets)`, { cause: e });
    }
    return this.decode(secret);
  }

  private decode(secret: V1Secret): CaState {
    const certPem = unb64(secret.data?.[ROOT_CERT_FILE]);
    const keyPem = unb64(secret.data?.[ROOT_KEY_FILE]);
    if (!certPem || !keyPem) throw new CaRootError(`${this.describe()} lacks ${ROOT_CERT_FILE} or ${ROOT_KEY_FILE}; delete it to generate a new root`);
    let previous: CaState['previous'] = [];
    const prev = unb64(secret.data?.[PREVIOUS_ROOTS_FILE]);
    if (prev) {
      try {
        previous = JSON.parse(prev) as CaState['previous'];
      } catch (e) {
        throw new CaRootError(`${this.describe()}: ${PREVIOUS_ROOTS_FILE} is not JSON`, { cause: e });
      }
    }
    return { current: { certPem, keyPem }, previous };
  }

  async create(state: CaState): Promise<CaState> {
    try {
      await this.api.createNamespacedSecret({ namespace: this.namespace, body: this.body(state) });
      return state;
    } catch (e) {
      if (statusCode(e) !== 409) throw new CaRootError(`cannot create ${this.describe()}: ${(e as Error).message}; check RBAC (create secrets)`, { cause: e });
    }
    // 409: a concurrent replica created it first; its root wins
    const winner = await this.load();
    if (!winner) throw new CaRootError(`${this.describe()} already existed when creating it but cannot be read now; restart the controller`);
    return winner;
  }

  async save(state: CaState): Promise<void> {
    const body = this.body(state);
    try {
      await this.api.replaceNamespacedSecret({ name: this.name, namespace: this.namespace, body });
    } catch (e) {
      if (statusCode(e) !== 404) throw new CaRootError(`cannot write ${this.describe()}: ${(e as Error).message}; check RBAC (update secrets)`, { cause: e });
      try {
        await this.api.createNamespacedSecret({ namespace: this.namespace, body });
      } catch (e2) {
        throw new CaRootError(`cannot create ${this.describe()}: ${(e2 as Error).message}; check RBAC (create secrets)`, { cause: e2 });
      }
    }
  }

  private body(state: CaState): V1Secret {
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: { name: this.name, namespace: this.namespace, labels: { 'app.kubernetes.io/part-of': 'weft' } },
      data: {
        [ROOT_CERT_FILE]: b64(state.current.certPem),
        [ROOT_KEY_FILE]: b64(state.current.keyPem),
        [PREVIOUS_ROOTS_FILE]: b64(JSON.stringify(state.previous)),
      },
    };
  }
}
