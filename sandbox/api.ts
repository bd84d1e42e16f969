// A programmatic handle on a sandbox, for integration tests and benchmarks in other areas: build one from
// a spec (YAML text or file) with its own id, run commands in its pods, read its status, tear it down.
// It drives the same `weft sandbox` CLI a user runs, so tests exercise exactly what ships.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { WEFT_BIN } from './mesh.js';
import type { SandboxStatus } from './status.js';

export interface StartOptions {
  /** sandbox id (1-10 of [a-z0-9]); default `sb<pid><n>`, unique per process */
  id?: string;
  nodes?: number;
  /** the spec as YAML text (written to a temp file), or `specFile` */
  spec?: string;
  specFile?: string;
  /** start without controller and agents */
  noMesh?: boolean;
  /** controller replicas (default 1) */
  controllers?: number;
  /** agents' tracing: an OTLP/HTTP URL reachable from the node namespaces, and the sampling percentage */
  tracing?: { collector: string; samplingPercent?: number };
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface SandboxHandle {
  id: string;
  status(): SandboxStatus;
  /** runs argv in a pod (`<ns>/<pod>`) like `kubectl exec`, waits for it */
  exec(pod: string, argv: string[], opts?: { timeoutMs?: number }): Promise<ExecResult>;
  down(): Promise<void>;
}

let seq = 0;

export function uniqueSandboxId(): string {
  return `sb${process.pid.toString(36)}${(seq++).toString(36)}`.slice(0, 10);
}

function weftSync(args: string[]): ExecResult {
  const r = spawnSync(process.execPath, [WEFT_BIN, ...args], { encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export async function startSandbox(opts: StartOptions): Promise<SandboxHandle> {
  const id = opts.id ?? uniqueSandboxId();
  let tmp: string | undefined;
  let specFile = opts.specFile;
  if (opts.spec !== undefined) {
    tmp = mkdtempSync(join(tmpdir(), 'weft-sandbox-spec-'));
    specFile = join(tmp, 'spec.yaml');
    writeFileSync(specFile, opts.spec);
  }
  if (!specFile) throw new Error('startSandbox needs spec or specFile');
  const args = ['sandbox', 'up', '--id', id, '--nodes', String(opts.nodes ?? 2), '-f', specFile, '--detach', ...(opts.noMesh ? ['--no-mesh'] : []), ...(opts.controllers ? ['--controllers', String(opts.controllers)] : []), ...(opts.tracing ? ['--trace-collector', opts.tracing.collector, ...(opts.tracing.samplingPercent !== undefined ? ['--trace-sampling', String(opts.tracing.samplingPercent)] : [])] : [])];
  const up = weftSync(args);
  if (up.code !== 0) {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    throw new Error(`weft ${args.join(' ')} failed (${up.code}):\n${up.stderr}`);
  }
  return {
    id,
    status() {
      const r = weftSync(['sandbox', 'status', '--id', id, '--json']);
      if (r.code !== 0) throw new Error(`weft sandbox status --id ${id}: ${r.stderr}`);
      return JSON.parse(r.stdout) as SandboxStatus;
    },
    exec(pod, argv, o = {}) {
      return new Promise((resolve) => {
        const child = spawn(process.execPath, [WEFT_BIN, 'sandbox', 'exec', '--id', id, pod, '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
      });
    },
    async down() {
      const r = weftSync(['sandbox', 'down', '--id', id]);
      if (tmp) rmSync(tmp, { recursive: true, force: true });
      if (r.code !== 0) throw new Error(`weft sandbox down --id ${id}: ${r.stderr}`);
    },
  };
}
