#!/usr/bin/env node
// The `weft` command. The code is TypeScript compiled to dist/; `npm run build` (or `npm test`,
// `npm run sandbox`) produces it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write('weft: not built yet. Run `npm run build` in the weft checkout first.\n');
  process.exit(2);
}
// Started by an end-of-life node (a global link, `node bin/weft.js` outside npm): run on the supported LTS
// that npm installed into node_modules (scripts/prepare.mjs), so the agents and controller it spawns with
// process.execPath run on it too.
const local = fileURLToPath(new URL('../node_modules/.bin/node', import.meta.url));
if (Number(process.versions.node.split('.')[0]) < 24 && existsSync(local)) {
  const child = spawn(local, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.on('SIGINT', () => {}); // Ctrl-C reaches the child through the process group already
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
} else {
  await import(main);
}
