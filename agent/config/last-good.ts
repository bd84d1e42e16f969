// The last config the agent accepted, kept on disk (<state-dir>/config/last-good.json) so an agent that
// restarts while the controller is down comes back serving what it served before.
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { join } from 'node:path';

import type { MeshConfig } from '../../common/mesh.js';

export interface LastGood {
  config: MeshConfig;
  trustBundlePem: string;
  savedAt: string;
}

const SLICE = 2000;

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

  /**
   * Writes the config as the same JSON as JSON.stringify({config, trustBundlePem, savedAt}), but in slices
   * of SLICE entries with the event loop free between them: a 10k-Service config is ~10 MB of JSON, whose
   * one-shot stringify would hold the proxy's event loop for 100+ ms.
   */
  async save(config: MeshConfig, trustBundlePem: string): Promise<void> {
    await mkdir(join(this.file, '..'), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      const { workloads, services, policies, nodes, ...head } = config;
      await fh.write(`{"config":${JSON.stringify(head).slice(0, -1)}${Object.keys(head).length ? ',' : ''}`);
      const lists: [string, unknown[]][] = [['nodes', nodes], ['workloads', workloads], ['services', services], ['policies', policies]];
      for (const [i, [name, list]] of lists.entries()) {
        await fh.write(`${i ? ',' : ''}"${name}":[`);
        for (let at = 0; at < list.length; at += SLICE) {
          const part = JSON.stringify(list.slice(at, at + SLICE));
          await fh.write(`${at ? ',' : ''}${part.slice(1, -1)}`);
          await yieldToLoop();
        }
        await fh.write(']');
      }
      await fh.write(`},"trustBundlePem":${JSON.stringify(trustBundlePem)},"savedAt":${JSON.stringify(new Date().toISOString())}}`);
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
  }
}
