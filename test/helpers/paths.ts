import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Tests run compiled from dist/test/...; the repository root is three levels up from this file.
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const distRoot = join(repoRoot, 'dist');
export const weftBin = join(repoRoot, 'bin', 'weft.js');
