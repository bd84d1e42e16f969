import t from 'tap';
import { spawnSync } from 'node:child_process';
import { weftBin } from './helpers/paths.js';

t.test('weft version --client prints the package version', async (t) => {
  const r = spawnSync(process.execPath, [weftBin, 'version', '--client'], { encoding: 'utf8' });
  t.equal(r.status, 0);
  t.match(r.stdout, /^client: weft \d+\.\d+\.\d+/);
});

t.test('unknown command is refused with usage', async (t) => {
  const r = spawnSync(process.execPath, [weftBin, 'no-such-thing'], { encoding: 'utf8' });
  t.equal(r.status, 2);
  t.match(r.stderr, /unknown command "no-such-thing"/);
});
