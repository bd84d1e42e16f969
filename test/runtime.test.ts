// The runtime Weft supports (package.json engines; Node 20 reached end of life on 2026-04-30) is the one the
// tests run on, and the one everything they spawn through process.execPath (agents, controller, load
// generators) runs on: `npm test` gets it from node_modules/.bin (scripts/prepare.mjs) even when the
// machine's own node is older, and bin/weft.js moves an older node over to it.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, weftBin } from './helpers/paths.js';

const engines = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).engines.node as string;
const wanted = Number(/(\d+)/.exec(engines)?.[1]);
const major = (v: string) => Number(/^v?(\d+)/.exec(v)?.[1]);

t.test('the tests run on the supported LTS named in engines', async (t) => {
  t.ok(wanted >= 24, `engines.node (${engines}) names a supported LTS`);
  t.ok(major(process.version) >= wanted, `running on ${process.version}, engines wants ${engines}`);
  t.ok(process.release.lts, `${process.version} is an LTS release (${String(process.release.lts)})`);
});

t.test('an older system node running bin/weft.js hands over to the local LTS', async (t) => {
  const old = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => existsSync(p) && major(spawnSync(p, ['--version'], { encoding: 'utf8' }).stdout) < wanted);
  if (!old) return t.pass('no older system node on this machine');
  // Every node in the chain prints its version as it starts.
  const code = Buffer.from('process.stderr.write(`runtime ${process.version}\\n`);').toString('base64');
  const printVersion = `--import=data:text/javascript;base64,${code}`;
  const r = spawnSync(old, [weftBin, 'version', '--client'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: printVersion } });
  t.equal(r.status, 0, r.stderr);
  // --client: the client's version only, whatever sandboxes or clusters this machine has
  t.match(r.stdout, /weft \d/);
  const versions = [...r.stderr.matchAll(/runtime (v\S+)/g)].map((m) => m[1]!);
  t.equal(versions.length, 2, `the old node, then the LTS: ${versions.join(', ')}`);
  t.ok(major(versions.at(-1)!) >= wanted, `weft ran on ${versions.at(-1)}`);
});
