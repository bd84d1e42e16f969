// Workload certificates, their keys and the trust bundle kept on disk (mode 0600) so an agent restarted
// while the controller is unreachable still has identities to serve with until they expire.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { WorkloadCertificate } from '../../common/identity.js';

interface OnDisk {
  spiffeId: string;
  certChainPem: string;
  keyPem: string;
  notBefore: string;
  notAfter: string;
}

const fileOf = (id: string) => `${createHash('sha256').update(id).digest('hex').slice(0, 32)}.json`;

async function writeAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode: 0o600 });
  await rename(tmp, path);
}

export class IdentityDiskCache {
  constructor(private readonly dir: string) {}

  async save(c: WorkloadCertificate): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const d: OnDisk = { spiffeId: c.spiffeId, certChainPem: c.certChainPem, keyPem: c.keyPem, notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString() };
    await writeAtomic(join(this.dir, fileOf(c.spiffeId)), JSON.stringify(d));
  }

  async remove(spiffeId: string): Promise<void> {
    await rm(join(this.dir, fileOf(spiffeId)), { force: true });
  }

  async saveTrustBundle(pem: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeAtomic(join(this.dir, 'trust-bundle.pem'), pem);
  }

  async loadTrustBundle(): Promise<string | undefined> {
    try {
      return await readFile(join(this.dir, 'trust-bundle.pem'), 'utf8');
    } catch {
      return undefined;
    }
  }

  /** every unexpired certificate on disk; unreadable or expired files are skipped */
  async loadAll(now: number): Promise<WorkloadCertificate[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const out: WorkloadCertificate[] = [];
    for (const n of names) {
      if (!n.endsWith('.json')) continue;
      try {
        const d = JSON.parse(await readFile(join(this.dir, n), 'utf8')) as OnDisk;
        const c = { spiffeId: d.spiffeId, certChainPem: d.certChainPem, keyPem: d.keyPem, notBefore: new Date(d.notBefore), notAfter: new Date(d.notAfter) };
        if (c.notAfter.getTime() > now && typeof c.spiffeId === 'string') out.push(c);
      } catch {
        // a torn or foreign file: the manager will fetch a fresh certificate
      }
    }
    return out;
  }
}
