// The last config the agent accepted, kept on disk (<state-dir>/config/last-good.json) so an agent that
// restarts while the controller is down comes back serving what it served before.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { MeshConfig } from '../../common/mesh.js';

export interface LastGood {
  config: MeshConfig;
  trustBundlePem: string;
  savedAt: string;
}

export class LastGoodStore {
  private readonly file: string;

  constructor(dir: string) {
    this.file = join(dir, 'last-good.json');
  }

  async load(): Promise<LastGood | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch {
      return undefined;
    }
    try {
      const d = JSON.parse(text) as LastGood;
      if (typeof d?.config?.version !== 'number' || !Array.isArray(d.config.workloads)) return undefined;
      return d;
    } catch {
      return undefined; // torn write from a crash: start empty and wait for the controller
    }
  }

  async save(config: MeshConfig, trustBundlePem: string): Promise<void> {
    await mkdir(join(this.file, '..'), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ config, trustBundlePem, savedAt: new Date().toISOString() } satisfies LastGood), { mode: 0o600 });
    await rename(tmp, this.file);
  }
}
