// Uninstall vs update: the preStop decision table, and removing Weft's pins from a real bpffs.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { decideOnShutdown, removePinnedState, type InstallStateReader } from '../../agent/kubernetes/uninstall.js';
import { nodeCleanupCommand } from '../../agent/kubernetes/node-cleanup-command.js';
import { tempDir } from './cgroup-fixtures.js';
import { weftBin } from '../helpers/paths.js';
import { silentLogger } from '../../common/log.js';
import { BpfLink } from '../../native/bpf.js';
import { cgroup2Mount, createCgroup, removeCgroup } from '../../native/cgroup.js';
import { DEFAULT_OBJECTS_DIR, ensureAttached, uninstallPins } from '../../agent/redirect/pins.js';

const OPTS = { namespace: 'weft-system', daemonSet: 'weft-agent', timeoutMs: 200 };

function reader(ds: { deletionTimestamp?: string } | undefined | Error, ns: { deletionTimestamp?: string } | undefined | Error = {}): InstallStateReader {
  const answer = <T>(v: T | Error) => (v instanceof Error ? Promise.reject(v) : Promise.resolve(v));
  return { daemonSet: async () => answer(ds), namespace: async () => answer(ns) };
}
const httpError = (code: number) => Object.assign(new Error(`HTTP ${code}`), { code });

t.test('decision table: keep only when the DaemonSet is positively still installed', async (t) => {
  t.match(await decideOnShutdown(reader({}), OPTS), { action: 'keep', reason: /update or restart/ }, 'rolling update / restart');
  t.match(await decideOnShutdown(reader(undefined), OPTS), { action: 'remove', reason: /gone/ }, 'kubectl delete ds (background propagation): 404');
  t.match(await decideOnShutdown(reader({ deletionTimestamp: '2026-11-23T03:00:00Z' }), OPTS), { action: 'remove', reason: /being deleted/ }, 'foreground deletion');
  t.match(await decideOnShutdown(reader({}, { deletionTimestamp: '2026-11-23T03:00:00Z' }), OPTS), { action: 'remove', reason: /namespace weft-system/ }, 'kubectl delete -k: namespace terminating');
  t.match(await decideOnShutdown(reader(httpError(403)), OPTS), { action: 'remove', reason: /403.*RBAC/ }, 'RBAC already removed');
  t.match(await decideOnShutdown(reader(httpError(401)), OPTS), { action: 'remove', reason: /401/ }, 'service account already removed');
  t.match(await decideOnShutdown(reader(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), OPTS), { action: 'remove', reason: /cannot tell/ }, 'API unreachable');
  const hanging: InstallStateReader = { daemonSet: () => new Promise(() => {}), namespace: () => new Promise(() => {}) };
  t.match(await decideOnShutdown(hanging, OPTS), { action: 'remove', reason: /within 200 ms/ }, 'API hanging: bounded by the timeout');
});

t.test('removePinnedState refuses anything but a weft* directory on bpffs', async (t) => {
  const d = tempDir(t, 'pins');
  mkdirSync(join(d, 'weft'));
  t.throws(() => removePinnedState(join(d, 'weft'), silentLogger), { code: 'WEFT_ERR_UNINSTALL_PIN_DIR', message: /not on a bpffs mount/ });
  t.ok(existsSync(join(d, 'weft')), 'left alone');
  mkdirSync('/tmp/' + `cilium-t${process.pid}`, { recursive: true });
  t.teardown(() => rmdirSync(`/tmp/cilium-t${process.pid}`));
  t.throws(() => removePinnedState(`/tmp/cilium-t${process.pid}`, silentLogger), { code: 'WEFT_ERR_UNINSTALL_PIN_DIR', message: /weft\* directory/ });
  t.equal(removePinnedState(join(d, 'weft-missing'), silentLogger), undefined, 'nothing there: nothing to do');
});

// Real programs attached (through capture's ensureAttached) to a cgroup this test creates, pinned in a
// private bpffs instance: the preStop hook keeps them on an update and detaches them on an uninstall.
t.test('node-cleanup on a real attach: keeps it on update, detaches and unpins on uninstall', { skip: process.getuid?.() !== 0 ? 'needs root (bpffs mount, cgroup, BPF)' : false }, async (t) => {
  const d = tempDir(t, 'bpffs');
  const mnt = join(d, 'bpf');
  mkdirSync(mnt);
  // A private bpffs instance (each bpf mount is its own): nothing another test or the node uses.
  execFileSync('mount', ['-t', 'bpf', 'bpf', mnt]);
  const cgroup = join(cgroup2Mount(), `weft-t${process.pid}-ds-kubepods`);
  const pinParent = join(mnt, 'weft');
  const pinDir = join(pinParent, 'default');
  t.teardown(() => {
    if (existsSync(pinDir)) uninstallPins(pinDir, silentLogger);
    removeCgroup(cgroup);
    execFileSync('umount', [mnt]);
  });
  const cgId = createCgroup(cgroup);
  ensureAttached(pinDir, cgroup, DEFAULT_OBJECTS_DIR, silentLogger);
  const attachedHere = () => {
    const r = spawnSync('bpftool', ['-j', 'cgroup', 'show', cgroup], { encoding: 'utf8' });
    return (JSON.parse(r.stdout.trim() || '[]') as unknown[]).length;
  };
  const before = attachedHere();
  t.ok(before >= 3, `programs attached to the test cgroup (${before})`);
  const link = BpfLink.openPinned(join(pinDir, 'link_connect4'));
  t.equal(link.info().cgroupId, cgId);
  link.close();

  const state = join(d, 'state');
  mkdirSync(state);
  writeFileSync(join(state, 'config.json'), '{}');
  const args = ['--if-uninstalling', `--pin-dir=${pinParent}`, `--state-dir=${state}`];

  t.equal(await nodeCleanupCommand(args, reader({})), 0);
  t.equal(attachedHere(), before, 'rolling update: still attached');
  t.ok(existsSync(join(pinDir, 'link_connect4')), 'and pinned');
  t.same(readdirSync(state), ['config.json'], 'state kept');

  t.equal(await nodeCleanupCommand(args, reader(undefined)), 0);
  t.equal(attachedHere(), 0, 'uninstall: nothing attached to the cgroup any more');
  t.notOk(existsSync(pinParent), 'no pins, no pin directory');
  t.ok(existsSync(state), 'the state directory (a hostPath mount point) stays');
  t.same(readdirSync(state), [], 'but is emptied');

  t.equal(await nodeCleanupCommand(args, reader(undefined)), 0, 'idempotent');
  await t.rejects(nodeCleanupCommand(['--bogus'], reader({})), { code: 'WEFT_ERR_CONFIG' });
});

t.test('`weft node-cleanup` is wired in the command table and refuses a directory that is not Weft pins', async (t) => {
  const d = tempDir(t, 'cli');
  const notPins = join(d, 'weft-notbpffs');
  mkdirSync(notPins);
  const r = spawnSync(process.execPath, [weftBin, 'node-cleanup', `--pin-dir=${notPins}`], { encoding: 'utf8' });
  t.equal(r.status, 1, r.stderr);
  t.match(r.stderr, /WEFT_ERR_UNINSTALL_PIN_DIR|not on a bpffs mount/);
  t.ok(existsSync(notPins), 'nothing removed');
});
