// The operator CLI's plumbing: finding the mesh (sandbox state, flags), aligned tables without colour
// off a terminal, errors that say what to do and exit codes scripts can trust.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { capsCheck, kernelCheck, mountsCheck } from '../cli/check.js';
import { table } from '../cli/output.js';
import { findSandbox, resolveTarget } from '../cli/target.js';
import { requestPath } from '../controller/web/server.js';
import { weftBin } from './helpers/paths.js';

function fakeState(base: string, id: string, extra: Record<string, unknown> = {}): void {
  mkdirSync(join(base, id), { recursive: true });
  writeFileSync(
    join(base, id, 'state.json'),
    JSON.stringify({
      schema: 1,
      id,
      phase: 'running',
      pid: process.pid,
      detached: true,
      startedAt: new Date().toISOString(),
      plan: { nodes: [{ name: 'node-1' }, { name: 'node-2' }] },
      pids: { controller: process.pid, agents: {}, pods: {} },
      forwards: [
        { name: 'controller-web', port: 40001 },
        { name: 'node-1-metrics', port: 40002 },
        { name: 'node-1-admin', port: 40003 },
        { name: 'prometheus', port: 40009 },
      ],
      ...extra,
    }),
  );
}

t.test('a running sandbox is found by itself: dev first, else the only one, else ask', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'weft-target-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const env = {};
  t.equal(findSandbox({ runBase: base, env }), undefined);
  fakeState(base, 'abc');
  t.equal(findSandbox({ runBase: base, env })?.id, 'abc', 'the only one running');
  fakeState(base, 'xyz');
  t.throws(() => findSandbox({ runBase: base, env }), /several sandboxes are running \(abc, xyz\); pick one with --sandbox ID/);
  fakeState(base, 'dev');
  t.equal(findSandbox({ runBase: base, env })?.id, 'dev', 'the default id wins');
  t.equal(findSandbox({ runBase: base, env: { WEFT_SANDBOX_ID: 'xyz' } })?.id, 'xyz');
  t.throws(() => findSandbox({ runBase: base, env, sandbox: 'nope' }), /no sandbox "nope" is running .*weft sandbox up --id nope --detach/);
  fakeState(base, 'old', { phase: 'failed' });
  fakeState(base, 'gone', { pid: 999999999, detached: false });
  t.notOk(['old', 'gone'].includes(findSandbox({ runBase: base, env, sandbox: 'dev' })!.id));

  const tg = await resolveTarget({ runBase: base, env, sandbox: 'dev' });
  t.equal(tg.controller, 'http://127.0.0.1:40001');
  t.equal(tg.prometheus, 'http://127.0.0.1:40009');
  t.same(tg.agents, [
    { node: 'node-1', metrics: 'http://127.0.0.1:40002/metrics', admin: 'http://127.0.0.1:40003' },
    { node: 'node-2', metrics: null, admin: null },
  ]);
  const flag = await resolveTarget({ runBase: base, env, controller: 'http://127.0.0.1:1234/' });
  t.equal(flag.controller, 'http://127.0.0.1:1234', '--controller overrides, trailing slash dropped');
});

t.test('tables are aligned; no colour codes off a terminal', async (t) => {
  const out = table({ color: false, write() {} }, ['NAME', 'SUCCESS', 'RPS'], [['shop/web', { text: '100.00%', color: 'green' }, '1.5rps'], ['a/b', '-', '0.0rps']]);
  t.equal(out, 'NAME      SUCCESS  RPS\nshop/web  100.00%  1.5rps\na/b       -        0.0rps\n');
  const colored = table({ color: true, write() {} }, ['A'], [[{ text: 'x', color: 'red' }]]);
  t.match(colored, /\u001b\[31mx\u001b\[0m/);
});

t.test('request paths: // and friends do not fail URL parsing', async (t) => {
  t.equal(requestPath('//'), '/');
  t.equal(requestPath('///api/v1//agents?x=1'), '/api/v1/agents');
  t.equal(requestPath('//evil.example/x'), '/evil.example/x');
  t.equal(requestPath(undefined), '/');
});

t.test('commands: help exits 0, bad flags exit non-zero naming the flag, unreachable controller says what to do', async (t) => {
  const run = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [weftBin, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  for (const c of [['stat'], ['version'], ['certs'], ['config', 'dump'], ['policy', 'status'], ['check']]) {
    const r = run([...c, '--help']);
    t.equal(r.status, 0, `${c.join(' ')} --help`);
    t.match(r.stdout, /^usage: weft /);
  }
  const v = run(['version', '--client']);
  t.equal(v.status, 0);
  t.match(v.stdout, /^client: weft \d+\.\d+\.\d+/);
  const bad = run(['stat', '--no-such-flag']);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /weft stat: .*no-such-flag.*see weft stat --help/);
  const fmt = run(['stat', '-o', 'xml']);
  t.equal(fmt.status, 1);
  t.match(fmt.stderr, /-o: "xml" is not an output format; use json, yaml or wide/);
  const down = run(['stat'], { WEFT_CONTROLLER: 'http://127.0.0.1:9' });
  t.equal(down.status, 1);
  t.match(down.stderr, /WEFT_ERR_TARGET: cannot reach the controller at http:\/\/127\.0\.0\.1:9 \(--controller http:\/\/127\.0\.0\.1:9\)/);
  const dump = run(['config', 'dump', 'nothing']);
  t.equal(dump.status, 1);
  t.match(dump.stderr, /name what to dump: workloads\|services\|policies\|routes\|certs\|connections\|endpoints\|all/);
});

t.test('weft check: pre-install checks read the kernel, mounts and capabilities', async (t) => {
  t.equal(kernelCheck('6.1.0-18-amd64').ok, true);
  t.match(kernelCheck('5.4.0'), { ok: false, detail: /needs Linux 5\.7 or newer/ });
  const m = mountsCheck('cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\nbpf /sys/fs/bpf bpf rw 0 0\n');
  t.same(m.map((c) => [c.name, c.ok, c.detail]), [['cgroup v2', true, 'mounted at /sys/fs/cgroup'], ['bpffs', true, 'mounted at /sys/fs/bpf']]);
  t.match(mountsCheck('cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n')[0], { ok: false, detail: /no cgroup2 mount/ });
  t.equal(capsCheck('CapEff:\t000001ffffffffff\n').ok, true, 'root');
  t.match(capsCheck('CapEff:\t0000000000000000\n'), { ok: false, detail: /missing CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF/ });
  const r = spawnSync(process.execPath, [weftBin, 'check', '--pre', '-o', 'json'], { encoding: 'utf8', timeout: 30_000 });
  const checks = JSON.parse(r.stdout) as { name: string; ok: boolean }[];
  t.same(checks.map((c) => c.name), ['kernel', 'cgroup v2', 'bpffs', 'privileges', 'ports']);
  t.equal(r.status, checks.every((c) => c.ok) ? 0 : 1, 'exit code follows the checks');
});
