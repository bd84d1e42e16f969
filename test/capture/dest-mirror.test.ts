// weft_dests is updated by diff against an in-memory mirror: a config version costs syscalls for what
// changed; a set that does not fit is refused before anything changes; an update the kernel refuses midway
// is rolled back; and the audit's forgetMirror() re-reads the kernel, so an entry removed behind the
// agent's back comes back.
import t from 'tap';
import { join } from 'node:path';

import { destCodec, flagsCodec, MAPS } from '../../agent/redirect/layout.js';
import { BpfMap } from '../../native/bpf.js';
import { destroyLabCapture, openLabCapture } from '../helpers/lab-capture.js';
import { createLab } from '../helpers/netns.js';

const lab = createLab('dests', 1);
const mgr = openLabCapture(lab, { sweepIntervalMs: 0 });
const raw = BpfMap.openPinned(join(lab.pinDir, MAPS.dests), destCodec, flagsCodec);
t.teardown(() => {
  raw.close();
  mgr.close();
  destroyLabCapture(lab);
});

const dest = (i: number) => ({ ip: `10.${250 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, port: 80 });
const kernel = () => raw.keys().map((d) => `${d.ip}|${d.port}`).sort();
const ids = (ds: { ip: string; port: number }[]) => ds.map((d) => `${d.ip}|${d.port}`).sort();

t.test('by diff: only what changed', async (t) => {
  const a = [dest(1), dest(2), dest(3)];
  t.same(mgr.setDestinations(a), { added: 3, removed: 0 });
  t.same(mgr.setDestinations([dest(2), dest(3), dest(4)]), { added: 1, removed: 1 });
  t.same(kernel(), ids([dest(2), dest(3), dest(4)]), 'the kernel holds the new set');
  t.same(mgr.setDestinations([dest(2), dest(3), dest(4)]), { added: 0, removed: 0 }, 'the same set again: nothing to do');
});

t.test('a set that does not fit the map is refused before anything changes', async (t) => {
  const before = kernel();
  const huge = Array.from({ length: 65_537 }, (_, i) => dest(i));
  t.throws(() => mgr.setDestinations(huge), { code: 'WEFT_ERR_CAPTURE_FULL', message: /65537 captured destinations.*holds 65536: nothing was changed/ });
  t.same(kernel(), before, 'unchanged');
});

t.test('an update the kernel refuses midway is rolled back', async (t) => {
  const before = kernel();
  const dests = (mgr as unknown as { dests: BpfMap<{ ip: string; port: number }, number> }).dests;
  const update = dests.update.bind(dests);
  let n = 0;
  dests.update = (k, v, f) => {
    if (++n === 3) throw new Error('E2BIG (simulated)');
    update(k, v, f);
  };
  t.teardown(() => void (dests.update = update));
  t.throws(() => mgr.setDestinations([dest(10), dest(11), dest(12), dest(13)]), /E2BIG/);
  dests.update = update;
  t.same(kernel(), before, 'the kernel holds the old set');
  t.same(ids(mgr.destinations()), before, 'and so does the mirror');
});

t.test('an entry removed behind the agent\'s back: the mirror does not see it until forgetMirror()', async (t) => {
  const want = [dest(2), dest(3), dest(4)];
  t.ok(raw.delete(dest(3)), 'removed by someone else');
  t.same(mgr.setDestinations(want), { added: 0, removed: 0 }, 'the mirror still believes it is there');
  mgr.forgetMirror();
  t.same(mgr.setDestinations(want), { added: 1, removed: 0 }, 're-read from the kernel: put back');
  t.same(kernel(), ids(want));
});
