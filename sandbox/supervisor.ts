// The sandbox's DaemonSet stand-in for one node: `weft sandbox supervise-agent` runs in the node's netns
// and agent cgroup, keeps one agent running (restarts one that exits, with a CrashLoopBackOff-like delay
// when it keeps dying), and upgrades it in place on SIGHUP (`weft sandbox restart-agent`) the way a
// DaemonSet with maxSurge does: the new agent starts beside the old one, and only once it reports ready
// (over the IPC channel: agent/lifecycle/supervised.ts) is the old one sent SIGTERM, so it hands its
// listeners over and drains. A status file says which pid is the agent now and how the last upgrade went.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface UpgradeRecord {
  at: string;
  ok: boolean;
  oldPid?: number;
  newPid?: number;
  /** how long the new agent took to report ready (ms) */
  readyMs?: number;
  error?: string;
}

export interface SupervisorStatus {
  supervisor: number;
  /** the agent serving now */
  agent?: number;
  /** agents started so far (first start, restarts, upgrades) */
  started: number;
  /** restarts after an unexpected exit */
  restarts: number;
  lastExit?: { pid: number; code: number | null; signal: string | null; at: string };
  /** upgrades finished (ok or not); restart-agent waits for this to grow */
  upgrades: number;
  lastUpgrade?: UpgradeRecord;
}

export function supervisorStatusFile(runDir: string, node: string): string {
  return join(runDir, 'agents', `${node}.json`);
}

export function readSupervisorStatus(file: string): SupervisorStatus | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SupervisorStatus;
  } catch {
    return undefined;
  }
}

export interface SupervisorOptions {
  argv: string[];
  statusFile: string;
  /** how long a new agent gets to become ready during an upgrade */
  readyTimeoutMs?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** Runs until SIGTERM/SIGINT: then stops the agents (they drain) and resolves. */
export function superviseAgent(o: SupervisorOptions): Promise<void> {
  const log = o.log ?? ((msg, fields) => process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'info', component: 'supervisor', msg, ...fields }) + '\n'));
  const status: SupervisorStatus = { supervisor: process.pid, started: 0, restarts: 0, upgrades: 0 };
  const save = () => {
    mkdirSync(dirname(o.statusFile), { recursive: true });
    const tmp = `${o.statusFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(status, null, 2) + '\n');
    renameSync(tmp, o.statusFile);
  };
  const children = new Set<ChildProcess>();
  let current: ChildProcess | undefined;
  let stopping = false;
  let upgrading = false;
  let quickDeaths = 0;
  let restartTimer: NodeJS.Timeout | undefined;

  const start = (): ChildProcess => {
    const [file, ...args] = o.argv;
    const child = spawn(file!, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: process.env });
    children.add(child);
    status.started++;
    const startedAt = Date.now();
    child.on('error', (e) => log('agent could not be started', { error: e.message }));
    child.on('exit', (code, signal) => {
      children.delete(child);
      status.lastExit = { pid: child.pid ?? -1, code, signal, at: new Date().toISOString() };
      if (child !== current) {
        log('previous agent exited', { pid: child.pid, code, signal });
        save();
        return;
      }
      current = undefined;
      status.agent = undefined;
      save();
      if (stopping) return;
      // CrashLoopBackOff-like: at once after a long life, then 0.25 s doubling to 10 s while it keeps dying
      quickDeaths = Date.now() - startedAt < 10_000 ? quickDeaths + 1 : 0;
      const delay = quickDeaths <= 1 ? 0 : Math.min(10_000, 250 * 2 ** (quickDeaths - 2));
      log('agent exited; restarting', { pid: child.pid, code, signal, delayMs: delay });
      restartTimer = setTimeout(() => {
        restartTimer = undefined;
        if (stopping || current) return;
        status.restarts++;
        current = start();
        status.agent = current.pid;
        save();
      }, delay);
    });
    return child;
  };

  const upgrade = async () => {
    if (upgrading || stopping) return;
    upgrading = true;
    const old = current;
    const t0 = Date.now();
    const next = start();
    log('upgrade: new agent started beside the old one', { old: old?.pid, new: next.pid });
    const outcome = await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(`not ready within ${(o.readyTimeoutMs ?? 60_000) / 1000} s`), o.readyTimeoutMs ?? 60_000);
      next.on('message', (m: unknown) => {
        if ((m as { weft?: string })?.weft === 'agent-ready') {
          clearTimeout(timer);
          resolve(undefined);
        }
      });
      next.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve(`the new agent exited before it was ready (code ${code}, signal ${signal})`);
      });
    });
    const rec: UpgradeRecord = { at: new Date().toISOString(), ok: !outcome, ...(old?.pid ? { oldPid: old.pid } : {}), ...(next.pid ? { newPid: next.pid } : {}) };
    if (outcome) {
      rec.error = outcome;
      log('upgrade failed; the old agent keeps serving', { error: outcome });
      next.kill('SIGKILL');
    } else {
      rec.readyMs = Date.now() - t0;
      current = next;
      status.agent = next.pid;
      log('upgrade: new agent ready, stopping the old one (it hands over and drains)', { old: old?.pid, new: next.pid, readyMs: rec.readyMs });
      old?.kill('SIGTERM');
    }
    status.upgrades++;
    status.lastUpgrade = rec;
    save();
    upgrading = false;
  };

  current = start();
  status.agent = current.pid;
  save();
  process.on('SIGHUP', () => void upgrade());
  return new Promise((resolve) => {
    const stop = () => {
      if (stopping) return;
      stopping = true;
      if (restartTimer) clearTimeout(restartTimer);
      for (const c of children) c.kill('SIGTERM');
      const check = setInterval(() => {
        if (children.size > 0) return;
        clearInterval(check);
        resolve();
      }, 50);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
