// Builds the cgroup fixtures (test/fixtures/cgroups/*.tree: real node layouts) as real directory trees
// under a temp dir, and reads the mount-table fixtures with their paths moved there.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { repoRoot } from '../helpers/paths.js';

export const fixtureDir = join(repoRoot, 'test', 'fixtures', 'cgroups');

/** The pods in the tree fixtures: one per QoS class. */
export const FIXTURE_PODS = {
  Guaranteed: '0f9c3a4e-6d1b-4c8e-9a2f-3b7e5d1c8a90',
  Burstable: '5a1e7c2d-9b3f-4e6a-8c0d-1f2e3a4b5c6d',
  BestEffort: 'c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f',
} as const;

export function buildTree(fixture: string, root: string): void {
  mkdirSync(root, { recursive: true });
  for (const raw of readFileSync(join(fixtureDir, fixture), 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const p = join(root, line);
    if (line.endsWith('/')) mkdirSync(p, { recursive: true });
    else {
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, '');
    }
  }
}

/** A temp dir removed when the test ends. */
export function tempDir(t: { teardown(fn: () => void): void }, tag: string): string {
  const d = mkdtempSync(join(tmpdir(), `weft-t${process.pid}-${tag}-`));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A mounts fixture with each `from` path prefix replaced (to point the node's mounts into a temp dir). */
export function mountsFixture(name: string, replace: Record<string, string> = {}): string {
  let text = readFileSync(join(fixtureDir, name), 'utf8');
  for (const [from, to] of Object.entries(replace)) text = text.split(` ${from}`).join(` ${to}`);
  return text;
}
