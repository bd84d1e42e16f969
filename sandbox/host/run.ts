// Runs the host programs the sandbox drives (ip, iptables-restore, nsenter, unshare, umount) and turns a
// failure into an error that quotes the command and its stderr.
import { spawn } from 'node:child_process';

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export class CommandError extends Error {
  constructor(readonly argv: string[], readonly result: RunResult) {
    super(`\`${argv.join(' ')}\` exited with ${result.code}: ${(result.stderr || result.stdout).trim().split('\n').slice(-3).join(' / ') || 'no output'}`);
  }
}

export interface RunOptions {
  input?: string;
  /** resolve instead of throwing on a non-zero exit */
  allowFail?: boolean;
  env?: NodeJS.ProcessEnv;
}

export function run(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => reject(new CommandError([file, ...args], { stdout, stderr: `${err.message}`, code: -1 })));
    child.on('close', (code, signal) => {
      const r = { stdout, stderr, code: code ?? (signal ? 128 : -1) };
      if (r.code !== 0 && !opts.allowFail) reject(new CommandError([file, ...args], r));
      else resolve(r);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** `ip -n NETNS -batch -` (or in the root namespace for netns add/del): many changes, one process. */
export async function ipBatch(netns: string | undefined, lines: string[], opts: { allowFail?: boolean } = {}): Promise<RunResult> {
  if (lines.length === 0) return { stdout: '', stderr: '', code: 0 };
  const args = [...(netns ? ['-n', netns] : []), ...(opts.allowFail ? ['-force'] : []), '-batch', '-'];
  return run('ip', args, { input: lines.join('\n') + '\n', allowFail: opts.allowFail ?? false });
}

/** Runs `argv` inside a network namespace we created, without remounting /sys (unlike `ip netns exec`). */
export function inNetns(netns: string, argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run('nsenter', [`--net=/run/netns/${netns}`, '--', ...argv], opts);
}

/** Runs async tasks with at most `limit` in flight; rejects with the first failure after all settle. */
export async function parallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  let firstError: unknown;
  const worker = async () => {
    while (i < items.length) {
      const item = items[i++]!;
      try {
        await fn(item);
      } catch (e) {
        firstError ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (firstError !== undefined) throw firstError;
}
