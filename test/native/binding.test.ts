// The binding's error paths and helpers on the real kernel: a refused program's error carries the
// verifier log; preflight names what is missing; cgroup and netns helpers; the root cgroup is refused.
import t from 'tap';
import { join } from 'node:path';

import { silentLogger } from '../../common/log.js';
import { RedirectManager } from '../../agent/redirect/manager.js';
import { BpfObject } from '../../native/bpf.js';
import { cgroup2Mount, cgroupId, createCgroup, isRootCgroup, readMounts, removeCgroup } from '../../native/cgroup.js';
import { BpfLoadError, PreflightError } from '../../native/errors.js';
import { currentNetnsCookie, netnsCookie } from '../../native/netns.js';
import { ensureBpffs, mountOf } from '../../native/preflight.js';
import { repoRoot } from '../helpers/paths.js';

t.test('a program the verifier refuses fails with WEFT_ERR_BPF_LOAD and the verifier log', async (t) => {
  const err = (() => {
    try {
      BpfObject.load(join(repoRoot, 'test', 'native', 'fixtures', 'bad_prog.o')).close();
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  t.ok(err instanceof BpfLoadError, 'BpfLoadError');
  const e = err as BpfLoadError;
  t.equal(e.code, 'WEFT_ERR_BPF_LOAD');
  t.match(e.log, /map_value_or_null|invalid mem access/, 'the verifier said why');
  t.match(e.message, /weft_bad/, 'the message names the program');
});

t.test('a missing object file is a load error naming the path', async (t) => {
  t.throws(() => BpfObject.load('/nonexistent/weft.o'), { code: 'WEFT_ERR_BPF_LOAD', message: /\/nonexistent\/weft\.o/ });
});

t.test('cgroup2 mount is found from /proc/mounts, wherever it is', async (t) => {
  const hybrid = 'tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n';
  t.equal(cgroup2Mount(readMounts(hybrid)), '/sys/fs/cgroup/unified');
  t.equal(cgroup2Mount(readMounts('cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n')), '/sys/fs/cgroup');
  t.throws(() => cgroup2Mount(readMounts('cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n')), { code: 'WEFT_ERR_CGROUP', message: /cgroup2/ });
  t.equal(mountOf('/sys/fs/bpf/weft/x', readMounts('bpf /sys/fs/bpf bpf rw 0 0\nsysfs /sys sysfs rw 0 0\n'))?.fstype, 'bpf');
});

t.test('cgroup id is the directory inode; create and remove', async (t) => {
  const mount = cgroup2Mount();
  const path = join(mount, `weft-t${process.pid}-bind`);
  t.teardown(() => void removeCgroup(path, mount));
  const id = createCgroup(join(path, 'child'), mount);
  t.equal(cgroupId(join(path, 'child')), id);
  t.ok(id > 1n);
  t.ok(isRootCgroup(mount, mount));
  t.throws(() => createCgroup('/tmp/not-a-cgroup', mount), { code: 'WEFT_ERR_CGROUP' });
  t.equal(removeCgroup(path, mount), true, 'removed with its child');
});

t.test('preflight: a pin directory off bpffs is refused with how to fix it', async (t) => {
  const e = (() => {
    try {
      ensureBpffs('/tmp/weft-not-bpffs', true);
    } catch (err) {
      return err;
    }
    return undefined;
  })();
  t.ok(e instanceof PreflightError, 'PreflightError');
  t.match(e, { code: 'WEFT_ERR_PREFLIGHT_BPFFS', check: 'bpffs', message: /mount -t bpf bpf/ });
});

t.test('netns cookies: own namespace, and another one', async (t) => {
  const own = currentNetnsCookie();
  t.ok(own > 0n);
  t.equal(netnsCookie('/proc/self/ns/net'), own, 'entering our own namespace gives our cookie');
  t.equal(currentNetnsCookie(), own, 'and we are back where we were');
  t.throws(() => netnsCookie('/run/netns/weft-does-not-exist'), { code: 'WEFT_ERR_NETNS' });
});

t.test("the machine's root cgroup is refused", async (t) => {
  t.throws(
    () => RedirectManager.open({ pinDir: `/sys/fs/bpf/weft-t${process.pid}-root`, cgroupRoot: cgroup2Mount(), proxy: { ipv4: '10.200.9.1' }, logger: silentLogger }),
    { code: 'WEFT_ERR_CAPTURE_ROOT_CGROUP' },
  );
  t.throws(
    () => RedirectManager.open({ pinDir: `/sys/fs/bpf/weft-t${process.pid}-root`, cgroupRoot: '/tmp', proxy: { ipv4: '10.200.9.1' }, logger: silentLogger }),
    { code: 'WEFT_ERR_CONFIG' },
  );
});
