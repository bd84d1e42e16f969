#!/usr/bin/env node
// Rebuilds the committed eBPF objects (bpf/*.o) from bpf/*.c with clang, and writes bpf/objects.json:
// for each object the sha256 of its inputs (its .c file and every bpf/lib header) and of the object.
// Git checkouts do not preserve mtimes, so test/capture/bpf-objects.test.ts compares these hashes, not
// times, to fail when a source changed without `npm run build:bpf`. Running Weft never needs clang.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bpfDir = join(root, 'bpf');
const CFLAGS = ['-O2', '-g', '-target', 'bpf', '-Wall', '-Werror', '-I/usr/include/x86_64-linux-gnu'];

/** sha256 over the program's source and all shared headers, in a fixed order; mirrored by the test. */
export function inputsHash(dir, source) {
  const h = createHash('sha256');
  const libs = readdirSync(join(dir, 'lib')).filter((f) => f.endsWith('.h')).sort();
  for (const name of [source, ...libs.map((l) => `lib/${l}`)]) {
    h.update(name + '\0');
    h.update(readFileSync(join(dir, name)));
    h.update('\0');
  }
  return h.digest('hex');
}

function sha256(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function main() {
  let clangVersion;
  try {
    clangVersion = execFileSync('clang', ['--version'], { encoding: 'utf8' }).split('\n')[0];
  } catch {
    process.stderr.write('build-bpf: clang not found. Install it with: apt-get install -y clang llvm libbpf-dev\n');
    process.exit(1);
  }
  const sources = readdirSync(bpfDir).filter((f) => f.endsWith('.c')).sort();
  const objects = {};
  for (const src of sources) {
    const obj = src.replace(/\.c$/, '.o');
    process.stderr.write(`build-bpf: ${src} -> ${obj}\n`);
    execFileSync('clang', [...CFLAGS, '-c', src, '-o', obj], { cwd: bpfDir, stdio: 'inherit' });
    objects[obj] = { source: src, inputsSha256: inputsHash(bpfDir, src), objectSha256: sha256(join(bpfDir, obj)) };
  }
  const manifest = {
    generated: 'by scripts/build-bpf.mjs (npm run build:bpf); do not edit',
    compiler: clangVersion,
    cflags: CFLAGS.join(' '),
    objects,
  };
  writeFileSync(join(bpfDir, 'objects.json'), JSON.stringify(manifest, null, 2) + '\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
