// The image recipe, checked statically (no container engine runs here): a Node 24 (LTS) build stage that
// compiles, and a runtime stage with Node 24, libbpf1, the BPF objects, the compiled code, production
// packages and no compiler.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { repoRoot } from '../helpers/paths.js';

const text = readFileSync(join(repoRoot, 'daemonset', 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
const lines = text.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
const stages: { from: string; name?: string; lines: string[] }[] = [];
const args = new Map<string, string>();
for (const l of lines) {
  const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(l);
  const arg = /^ARG\s+(\w+)=(\S+)/i.exec(l);
  if (arg && stages.length === 0) args.set(arg[1]!, arg[2]!);
  if (from) stages.push({ from: from[1]!.replace(/\$\{(\w+)\}/g, (_, n: string) => args.get(n) ?? ''), ...(from[2] ? { name: from[2] } : {}), lines: [] });
  else stages.at(-1)?.lines.push(l);
}

t.test('multi-stage: Node 24 build stage compiles and prunes dev dependencies', async (t) => {
  t.equal(stages.length, 2);
  const build = stages[0]!;
  t.match(build.from, /^node:24\b/);
  t.ok(build.lines.some((l) => /npm ci\b/.test(l)), 'npm ci');
  t.ok(build.lines.some((l) => /tsc -p tsconfig\.json/.test(l)), 'tsc');
  t.ok(build.lines.some((l) => /npm prune --omit=dev/.test(l)), 'production node_modules only');
  t.ok(build.lines.some((l) => /rm -rf node_modules\/node-linux-\*/.test(l)), 'no second Node binary from optionalDependencies');
});

t.test('runtime: Node 24, libbpf1, BPF objects, dist, no compiler', async (t) => {
  const rt = stages[1]!;
  const body = rt.lines.join('\n');
  t.match(rt.from, /^node:24\b/);
  t.match(body, /apt-get install[^\n]*\blibbpf1\b/);
  t.notMatch(body, /\b(clang|llvm|gcc|g\+\+|build-essential|libbpf-dev|make|python3)\b/, 'no compiler or headers in the runtime image');
  t.match(body, /COPY bpf\/\*\.o /, 'the committed BPF objects');
  for (const d of ['common', 'cli', 'native', 'agent', 'controller']) t.match(body, new RegExp(`COPY --from=build /src/dist/${d} `), `dist/${d}`);
  t.notMatch(body, /dist\/test|dist\/bench/, 'no compiled tests or benchmarks');
  t.match(body, /COPY --from=build \/src\/node_modules /);
  t.match(body, /COPY daemonset\/crds /, 'the CRD schemas the controller validates against');
  t.match(body, /ENTRYPOINT \["node", "\/app\/bin\/weft\.js"\]/);
});

t.test('the manifests run the image the way the Dockerfile lays it out', async (t) => {
  for (const f of ['agent-daemonset.yaml', 'controller-deployment.yaml']) {
    t.match(readFileSync(join(repoRoot, 'daemonset', f), 'utf8'), /command: \[node, \/app\/bin\/weft\.js\]/, f);
  }
});

t.test('every path the runtime copies from the build stage exists there (bin/ was never copied: no build)', async (t) => {
  const build = stages[0]!;
  const rt = stages[1]!;
  // what the build stage has under /src: what it copied from the context, plus what npm ci and tsc made
  const made = new Set(['node_modules', 'dist']);
  for (const l of build.lines) {
    const m = /^COPY\s+(?!--from)(.+)\s+(\S+)$/i.exec(l);
    if (!m) continue;
    const dest = m[2]!.replace(/^\.\/?/, '');
    for (const src of m[1]!.trim().split(/\s+/)) made.add(dest === '' ? src : dest);
  }
  const fromBuild = rt.lines.map((l) => /^COPY --from=build \/src\/(\S+)/.exec(l)?.[1]).filter((x): x is string => !!x);
  t.ok(fromBuild.includes('bin'), 'the runtime gets bin/weft.js');
  for (const p of fromBuild) t.ok(made.has(p.split('/')[0]!), `/src/${p} is in the build stage`);
  for (const l of [...build.lines, ...rt.lines]) {
    const m = /^COPY\s+(?!--from)(.+)\s+\S+$/i.exec(l);
    if (!m) continue;
    for (const src of m[1]!.trim().split(/\s+/)) {
      const dir = src.includes('*') ? src.slice(0, src.lastIndexOf('/')) : src;
      t.ok(existsSync(join(repoRoot, dir)), `${src} exists in the build context`);
    }
  }
  t.ok(existsSync(join(repoRoot, 'bin', 'weft.js')));
});

t.test('the base image is a build argument (the local build passes its own), the build script exists', async (t) => {
  t.match(text, /^ARG NODE_IMAGE=node:\S+/m);
  t.equal(stages.length, [...text.matchAll(/^FROM \$\{NODE_IMAGE\}/gm)].length, 'every stage is FROM ${NODE_IMAGE}');
  const script = readFileSync(join(repoRoot, 'scripts', 'build-image.sh'), 'utf8');
  t.match(script, /--build-arg NODE_IMAGE=/);
  t.match(script, /-f daemonset\/Dockerfile/);
});
