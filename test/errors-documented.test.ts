// Every WEFT_ERR_* code used in the source must be documented in docs/errors.md (as fastify does).
import t from 'tap';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './helpers/paths.js';

const SOURCE_DIRS = ['common', 'cli', 'native', 'agent', 'controller', 'sandbox', 'proto', 'daemonset'];

function* walk(dir: string): Generator<string> {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yield* walk(p);
    else if (p.endsWith('.ts')) yield p;
  }
}

t.test('every error code is documented', async (t) => {
  const docs = readFileSync(join(repoRoot, 'docs', 'errors.md'), 'utf8');
  const used = new Map<string, string>();
  for (const d of SOURCE_DIRS) {
    for (const file of walk(join(repoRoot, d))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/WEFT_ERR_[A-Z0-9_]+/g)) used.set(m[0], file);
    }
  }
  t.ok(used.size > 0, 'found error codes in the source');
  for (const [code, file] of used) t.ok(docs.includes('`' + code + '`'), `${code} (used in ${file}) is in docs/errors.md`);
});
