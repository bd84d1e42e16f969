// Uninstall vs update: the preStop decision table, and removing Weft's pins from a real bpffs.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { decideOnShutdown, removePinnedState, type InstallStateReader } from '../../agent/kubernetes/uninstall.js';
import { nodeCleanupCommand } from '../../agent/kubernetes/node-cleanup-command.js';
import { tempDir } from './cgroup-fixtures.js';

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
  t.throws(() => removePinnedState(join(d, 'weft')), { code: 'WEFT_ERR_UNINSTALL_PIN_DIR', message: /not on a bpffs mount/ });
  t.ok(existsSync(join(d, 'weft')), 'left alone');
  mkdirSync(join(d, 'cilium'));
  t.throws(() => removePinnedState(join(d, 'cilium')), { code: 'WEFT_ERR_UNINSTALL_PIN_DIR', message: /named weft/ });
  t.ok(existsSync(join(d, 'cilium')), 'left alone');
  t.equal(removePinnedState(join(d, 'weft-missing')), false, 'nothing there: nothing to do');
});

t.test('node-cleanup on a real bpffs: keeps pins on update, removes them (and the state) on uninstall', { skip: process.getuid?.() !== 0 ? 'needs root to mount a private bpffs' : false }, async (t) => {
  const d = tempDir(t, 'bpffs');
  const mnt = join(d, 'bpf');
  mkdirSync(mnt);
  // A private bpffs instance (each bpf mount is its own): nothing another test or the node uses.
  execFileSync('mount', ['-t', 'bpf', 'bpf', mnt]);
  t.teardown(() => execFileSync('umount', [mnt]));
  const pinDir = join(mnt, `weft-t${process.pid}`);
  mkdirSync(join(pinDir, 'links'), { recursive: true });
  mkdirSync(join(pinDir, 'maps'));
  const state = join(d, 'state');
  mkdirSync(state);
  writeFileSync(join(state, 'config.json'), '{}');

  const args = ['--if-uninstalling', `--pin-dir=${pinDir}`, `--state-dir=${state}`];
  t.equal(await nodeCleanupCommand(args, reader({})), 0);
  t.ok(existsSync(join(pinDir, 'links')), 'rolling update: pins kept');
  t.same(readdirSync(state), ['config.json'], 'and the state');

  t.equal(await nodeCleanupCommand(args, reader(undefined)), 0);
  t.notOk(existsSync(pinDir), 'uninstall: pins removed');
  t.ok(existsSync(state), 'the state directory (a hostPath mount point) stays');
  t.same(readdirSync(state), [], 'but is emptied');

  t.equal(await nodeCleanupCommand(args, reader(undefined)), 0, 'idempotent');
  await t.rejects(nodeCleanupCommand(['--bogus'], reader({})), { code: 'WEFT_ERR_CONFIG' });
});
