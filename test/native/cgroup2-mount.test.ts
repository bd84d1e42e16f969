// Which cgroup2 mount holds a cgroup path, from a mount table's text: the longest mount point that is a
// prefix of it; the first cgroup2 mount without a path, or when none holds it.
import t from 'tap';

import { cgroup2Mount, isInsideCgroup2, isRootCgroup, readMounts } from '../../native/cgroup.js';

// a container with its own cgroup namespace at /sys/fs/cgroup, the node's tree mounted at /host/sys/fs/cgroup,
// and a test hierarchy mounted further down
const table = readMounts(
  [
    'overlay / overlay rw 0 0',
    'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0',
    'cgroup2 /host/sys/fs/cgroup cgroup2 ro,nosuid 0 0',
    'cgroup2 /host/sys/fs/cgroup/nested\\040dir cgroup2 rw 0 0',
    'cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0',
  ].join('\n') + '\n',
);

t.test('the mount that holds the given cgroup wins, not the first cgroup2 line', async (t) => {
  t.equal(cgroup2Mount(table, '/host/sys/fs/cgroup/kubepods.slice'), '/host/sys/fs/cgroup');
  t.equal(cgroup2Mount(table, '/host/sys/fs/cgroup'), '/host/sys/fs/cgroup', 'the mount point itself');
  t.equal(cgroup2Mount(table, '/host/sys/fs/cgroup/nested dir/pods'), '/host/sys/fs/cgroup/nested dir', 'the longest prefix (escapes decoded)');
  t.equal(cgroup2Mount(table, '/sys/fs/cgroup/weft-x'), '/sys/fs/cgroup');
  t.equal(cgroup2Mount(table, '/host/sys/fs/cgroupX/a'), '/sys/fs/cgroup', 'a name prefix is not a path prefix: no mount holds it, the first is named');
});

t.test('without a path, or when none holds it, the first cgroup2 mount (unchanged behaviour)', async (t) => {
  t.equal(cgroup2Mount(table), '/sys/fs/cgroup');
  t.equal(cgroup2Mount(table, '/var/lib/x'), '/sys/fs/cgroup');
  const hybrid = readMounts('tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n');
  t.equal(cgroup2Mount(hybrid, '/sys/fs/cgroup/unified/weft-x'), '/sys/fs/cgroup/unified');
  t.throws(() => cgroup2Mount(readMounts('cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n'), '/sys/fs/cgroup/cpu/x'), { code: 'WEFT_ERR_CGROUP', message: /cgroup2/ });
});

t.test('the root-cgroup and inside checks use the holding mount', async (t) => {
  const kube = '/host/sys/fs/cgroup';
  t.ok(isRootCgroup(kube, cgroup2Mount(table, kube)), "the node's root cgroup is refused even though another cgroup2 mount comes first");
  t.notOk(isRootCgroup(`${kube}/kubepods`, cgroup2Mount(table, `${kube}/kubepods`)));
  t.ok(isInsideCgroup2(`${kube}/kubepods`, cgroup2Mount(table, `${kube}/kubepods`)));
});
