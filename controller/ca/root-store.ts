// Where the CA keeps its root between restarts. The directory store is for the sandbox and single-host
// installs; the Kubernetes Secret store (kubernetes-secret-store.ts) for a cluster. Both hold the current
// root (certificate + key) and the previous roots still in the trust bundle after a rotation.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { CaRootError } from './errors.js';

export interface RootMaterial {
  certPem: string;
  keyPem: string;
}

export interface CaState {
  current: RootMaterial;
  previous: { certPem: string; retireAfter: string }[];
}

export interface RootStore {
  /** the persisted state, or undefined on first start */
  load(): Promise<CaState | undefined>;
  save(state: CaState): Promise<void>;
  /**
   * First start: stores `state` only if nothing is stored yet and returns what is stored then, which is a
   * concurrent writer's state when another controller replica created it first. Stores without it use save().
   */
  create?(state: CaState): Promise<CaState>;
  /** where it lives, for logs and error messages */
  describe(): string;
  /**
   * Calls `fn` with the stored state whenever another writer (a controller replica that rotated the root)
   * changed it, so every replica signs with the same root and serves the same trust bundle. Returns a stop
   * function. Stores without it are single-replica.
   */
  watch?(fn: (state: CaState) => void): () => void;
}

/** same root and same previous roots */
export function sameCaState(a: CaState, b: CaState): boolean {
  return a.current.certPem === b.current.certPem && a.current.keyPem === b.current.keyPem && JSON.stringify(a.previous) === JSON.stringify(b.previous);
}

export const ROOT_CERT_FILE = 'root-cert.pem';
export const ROOT_KEY_FILE = 'root-key.pem';
export const PREVIOUS_ROOTS_FILE = 'previous-roots.json';

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CaRootError(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, path);
}

/**
 * `<dir>/root-cert.pem`, `<dir>/root-key.pem` (0600) and `<dir>/previous-roots.json`. Replicas on one host
 * (the sandbox) share the directory; watch() polls it (a file watch misses renames on some filesystems).
 */
export class DirectoryRootStore implements RootStore {
  constructor(
    private readonly dir: string,
    private readonly pollMs = 1000,
  ) {}

  watch(fn: (state: CaState) => void): () => void {
    let last: CaState | undefined;
    let busy = false;
    const poll = async () => {
      if (busy) return;
      busy = true;
      try {
        const s = await this.load();
        if (s && (!last || !sameCaState(s, last))) {
          if (last) fn(s);
          last = s;
        }
      } catch {
        // a write in progress (key renamed before the certificate): the next poll sees the finished state
      } finally {
        busy = false;
      }
    };
    void poll();
    const t = setInterval(() => void poll(), this.pollMs);
    t.unref();
    return () => clearInterval(t);
  }

  describe(): string {
    return `directory ${this.dir}`;
  }

  async load(): Promise<CaState | undefined> {
    const certPem = await readIfExists(join(this.dir, ROOT_CERT_FILE));
    const keyPem = await readIfExists(join(this.dir, ROOT_KEY_FILE));
    if (certPem === undefined && keyPem === undefined) return undefined;
    if (certPem === undefined || keyPem === undefined) {
      throw new CaRootError(`${this.dir} holds only one of ${ROOT_CERT_FILE} and ${ROOT_KEY_FILE}; restore the other or remove both to generate a new root`);
    }
    const prevText = await readIfExists(join(this.dir, PREVIOUS_ROOTS_FILE));
    let previous: CaState['previous'] = [];
    if (prevText !== undefined) {
      try {
        previous = JSON.parse(prevText) as CaState['previous'];
        if (!Array.isArray(previous)) throw new Error('not an array');
      } catch (e) {
        throw new CaRootError(`${join(this.dir, PREVIOUS_ROOTS_FILE)} is not a JSON array of {certPem, retireAfter}; fix or remove it`, { cause: e });
      }
    }
    return { current: { certPem, keyPem }, previous };
  }

  async save(state: CaState): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeAtomic(join(this.dir, ROOT_KEY_FILE), state.current.keyPem, 0o600);
    await writeAtomic(join(this.dir, ROOT_CERT_FILE), state.current.certPem, 0o644);
    await writeAtomic(join(this.dir, PREVIOUS_ROOTS_FILE), JSON.stringify(state.previous, null, 2) + '\n', 0o644);
  }
}

/** An operator's own root, from files. */
export async function readOperatorRoot(certFile: string, keyFile: string): Promise<RootMaterial> {
  const certPem = await readIfExists(certFile);
  const keyPem = await readIfExists(keyFile);
  if (certPem === undefined) throw new CaRootError(`CA certificate file ${certFile} does not exist`);
  if (keyPem === undefined) throw new CaRootError(`CA key file ${keyFile} does not exist`);
  return { certPem, keyPem };
}
