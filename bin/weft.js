#!/usr/bin/env node
// The `weft` command. The code is TypeScript compiled to dist/; `npm run build` (or `npm test`,
// `npm run sandbox`) produces it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write('weft: not built yet. Run `npm run build` in the weft checkout first.\n');
  process.exit(2);
}
await import(main);
