// The bpffs Weft mounts when a machine has none is unmounted again once nothing is pinned on it (sandbox down,
// capture uninstall), so running the sandbox or the tests leaves the machine as it was; a pin keeps it mounted.
import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import t from 'tap';
import { BPFFS_MARKER, ensureBpffs, mountOf, releaseBpffs } from '../../native/preflight.js';

const BPFFS = '/sys/fs/bpf';

t.test('a bpffs Weft mounted is released when empty, kept while something is pinned', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, async (t) => {
  const before = mountOf(BPFFS)?.fstype === 'bpf';
  if (before && !existsSync(BPFFS_MARKER)) {
    t.equal(releaseBpffs(), false, 'a bpffs someone else mounted is never unmounted');
    t.equal(mountOf(BPFFS)?.fstype, 'bpf');
    return;
  }
  ensureBpffs(`${BPFFS}/weft-release-test`);
  t.equal(mountOf(BPFFS)?.fstype, 'bpf', 'mounted');
  t.ok(existsSync(BPFFS_MARKER), 'marked as mounted by Weft');
  const pin = `${BPFFS}/weft-release-test-${process.pid}`;
  mkdirSync(pin);
  t.equal(releaseBpffs(), false, 'kept while something is pinned on it');
  t.equal(mountOf(BPFFS)?.fstype, 'bpf');
  rmdirSync(pin);
  t.equal(releaseBpffs(), true, 'unmounted once only the kernel entries are left');
  t.not(mountOf(BPFFS)?.fstype, 'bpf', 'no bpffs left at /sys/fs/bpf');
  t.notOk(existsSync(BPFFS_MARKER), 'marker removed');
});
