// Helpers for tests that build a real sandbox: a unique id per test run (so a developer's own sandbox and
// other helpers' resources are never touched), the weft CLI, and a census of everything a sandbox id
// could leave behind on the machine.
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

import { startSandbox, uniqueSandboxId, type SandboxHandle } from '../../sandbox/api.js';
import { findCgroup2Mount } from '../../sandbox/host/cgroup.js';
import { weftBin } from './paths.js';

/** `sb<pid><n>`: netns names `weft-sb...-` never match other tests' `weft-t<pid>-` prefixes. */
export const testSandboxId = uniqueSandboxId;

export function weft(args: string[], opts: { timeoutMs?: number } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [weftBin, ...args], { encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000 });
}

/** `weft sandbox down --id ID`, as a test's teardown runs it: a failure is reported, not thrown. */
export function sandboxDown(id: string): void {
  const r = weft(['sandbox', 'down', '--id', id], { timeoutMs: 180_000 });
  if (r.status !== 0) console.error(`sandbox down --id ${id} failed: ${r.stderr}`);
}

/** A sandbox for one test file: started from `spec`, taken down at teardown (and at once if it fails to start). */
export async function testSandbox(t: { teardown(fn: () => void): void }, id: string, spec: string, nodes: number, extraTeardown: () => void = () => {}): Promise<SandboxHandle> {
  const down = () => {
    extraTeardown();
    sandboxDown(id);
  };
  t.teardown(down);
  try {
    return await startSandbox({ id, spec, nodes });
  } catch (err) {
    down();
    throw err;
  }
}

export function weftAsync(args: string[]) {
  return spawn(process.execPath, [weftBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Everything with this sandbox id still on the machine; empty when clean. */
export function leftovers(id: string): string[] {
  const out: string[] = [];
  const prefix = `weft-${id}-`;
  if (existsSync('/run/netns')) for (const n of readdirSync('/run/netns')) if (n.startsWith(prefix)) out.push(`netns ${n}`);
  const cg = `${findCgroup2Mount()}/weft-sandbox-${id}`;
  if (existsSync(cg)) out.push(`cgroup ${cg}`);
  if (existsSync(`/sys/fs/bpf/weft-sandbox-${id}`)) out.push(`bpffs /sys/fs/bpf/weft-sandbox-${id}`);
  const runDir = `/run/weft-sandbox/${id}`;
  if (existsSync(runDir)) out.push(`run dir ${runDir}`);
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) if (line.includes(`${runDir}/`) || line.includes(`${runDir} `)) out.push(`mount ${line}`);
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      // a zombie (killed, not yet reaped by its parent or init) holds nothing but its pid
      if (/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${p}/stat`, 'utf8'))) continue;
      const cgroup = readFileSync(`/proc/${p}/cgroup`, 'utf8');
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cgroup.includes(`/weft-sandbox-${id}/`) || cmd.includes(`${runDir}/`) || cmd.includes(`/run/netns/${prefix}`)) out.push(`process ${p} ${cmd.replace(/\0/g, ' ').trim()}`);
    } catch {
      // exited while we looked
    }
  }
  const links = spawnSync('ip', ['-o', 'link'], { encoding: 'utf8' }).stdout;
  for (const l of links.split('\n')) if (l.includes(id)) out.push(`root link ${l}`);
  return out;
}
