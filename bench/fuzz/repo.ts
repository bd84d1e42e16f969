// The repository root from dist/bench/fuzz/*.js or bench/fuzz/*.ts, for seeds kept in the tree.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = here.includes('/dist/') ? join(here, '..', '..', '..') : join(here, '..', '..');
