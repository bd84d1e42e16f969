// The committed eBPF objects must be built from the committed sources. Git does not keep mtimes, so
// scripts/build-bpf.mjs records a sha256 of each object's inputs in bpf/objects.json; a source or header
// edited without `npm run build:bpf` changes that hash and fails here.
import t from 'tap';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { INBOUND_LOOKUP, OBJECTS } from '../../agent/redirect/layout.js';
import { repoRoot } from '../helpers/paths.js';

interface Manifest {
  objects: Record<string, { source: string; inputsSha256: string; objectSha256: string }>;
}

const bpfDir = join(repoRoot, 'bpf');
const manifest = JSON.parse(readFileSync(join(bpfDir, 'objects.json'), 'utf8')) as Manifest;
const { inputsHash } = (await import(pathToFileURL(join(repoRoot, 'scripts', 'build-bpf.mjs')).href)) as {
  inputsHash: (dir: string, source: string) => string;
};

t.test('every C source has a committed object in the manifest', async (t) => {
  const sources = readdirSync(bpfDir).filter((f) => f.endsWith('.c')).sort();
  t.same(Object.values(manifest.objects).map((o) => o.source).sort(), sources);
  t.same([...OBJECTS.map((o) => o.file), INBOUND_LOOKUP.file].sort(), Object.keys(manifest.objects).sort(), 'the agent loads exactly these objects');
});

t.test('no committed object is older than its source', async (t) => {
  for (const [obj, entry] of Object.entries(manifest.objects)) {
    const now = inputsHash(bpfDir, entry.source);
    // mtimes are only extra information: a fresh clone gives every file the checkout time
    const note = `${obj} mtime ${statSync(join(bpfDir, obj)).mtime.toISOString()}, ${entry.source} mtime ${statSync(join(bpfDir, entry.source)).mtime.toISOString()}`;
    t.equal(now, entry.inputsSha256, `${entry.source} and bpf/lib/*.h unchanged since ${obj} was built; else run npm run build:bpf (${note})`);
    const objHash = createHash('sha256').update(readFileSync(join(bpfDir, obj))).digest('hex');
    t.equal(objHash, entry.objectSha256, `${obj} is the object build-bpf produced`);
  }
});

t.test('an edited header makes every object stale', async (t) => {
  // the check itself must notice a change: hash a copy of the tree with one header byte changed
  const { mkdtempSync, cpSync, appendFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'weft-bpf-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(bpfDir, dir, { recursive: true });
  appendFileSync(join(dir, 'lib', 'maps.h'), '\n');
  for (const entry of Object.values(manifest.objects)) t.not(inputsHash(dir, entry.source), entry.inputsSha256, `${entry.source} is stale`);
});
