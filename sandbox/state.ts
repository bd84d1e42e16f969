// The sandbox's run directory and state file. The plan (every name the sandbox will create) is written
// before the first resource exists, and the pids as processes start, so `down` can always find what to
// remove; it also scans for the sandbox's name prefixes in case the state file itself is lost.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { WeftConfigError } from '../common/errors.js';
import type { Forward } from './forward.js';
import type { Plan } from './plan.js';

export const RUN_BASE = '/run/weft-sandbox';
export const DEFAULT_ID = 'dev';
export const STATE_SCHEMA = 1;

export type Phase = 'building' | 'running' | 'failed' | 'stopping';

export interface SandboxState {
  schema: number;
  id: string;
  phase: Phase;
  /** the `weft sandbox up` process (gone after --detach) */
  pid: number;
  detached: boolean;
  startedAt: string;
  readyAt?: string;
  /** why the mesh (controller + agents) is off, when it is */
  meshDisabled?: string;
  /** why the controller is not running, when it is not */
  controllerDisabled?: string;
  plan: Plan;
  pids: {
    controller?: number;
    /** controller replicas 1.. (replica 0 is `controller`), with `up --controllers N` */
    controllerReplicas?: number[];
    /** the sandbox's Prometheus (in the controller's netns), when it runs */
    prometheus?: number;
    agents: Record<string, number>;
    /** "ns/pod" -> container name -> pid */
    pods: Record<string, Record<string, number>>;
  };
  forwards: Forward[];
  /** the step that failed, when phase is failed */
  error?: string;
}

export function validateId(id: string): string {
  if (!/^[a-z0-9]{1,10}$/.test(id)) throw new WeftConfigError('--id', `"${id}" is not a valid sandbox id: 1 to 10 lower-case letters or digits`);
  return id;
}

export function runDirFor(id: string, base = RUN_BASE): string {
  return join(base, id);
}

export function statePath(runDir: string): string {
  return join(runDir, 'state.json');
}

export function readState(runDir: string): SandboxState | undefined {
  const p = statePath(runDir);
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as SandboxState;
  } catch {
    return undefined; // torn write after a crash: down falls back to name scans
  }
}

/** Atomic replace, so a crash never leaves half a state file. */
export function writeState(runDir: string, state: SandboxState): void {
  mkdirSync(runDir, { recursive: true });
  const p = statePath(runDir);
  writeFileSync(`${p}.tmp`, JSON.stringify(state, null, 2) + '\n');
  renameSync(`${p}.tmp`, p);
}

export function pidAlive(pid: number | undefined): boolean {
  if (!pid || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
