// The machine and software versions a result was measured with: the README table is meaningless without them.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface Machine {
  cpuModel: string;
  cores: number;
  kernel: string;
  memGiB: number;
  loadStart: string;
  loadEnd: string;
  versions: Record<'node' | 'nginx' | 'haproxy' | 'weft' | 'wrk' | 'h2load', string>;
}

function firstMatch(argv: string[], re: RegExp): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  return re.exec(text)?.[1] ?? 'not installed';
}

export function loadAverage(): string {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

export function describeMachine(packageJson: string): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  let weft = 'unknown';
  try {
    weft = (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;
    const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', cwd: new URL('.', `file://${packageJson}`).pathname });
    if (git.status === 0) weft += ` (${git.stdout.trim()})`;
  } catch {
    // keep unknown
  }
  return {
    cpuModel: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown',
    cores: cpuinfo.split('\n').filter((l) => l.startsWith('processor')).length,
    kernel: os.release(),
    memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadStart: loadAverage(),
    loadEnd: '',
    versions: {
      node: process.versions.node,
      nginx: firstMatch(['nginx', '-v'], /nginx\/(\S+)/),
      haproxy: firstMatch(['haproxy', '-v'], /version (\S+)/),
      weft,
      wrk: firstMatch(['wrk', '--version'], /wrk (\S+)/),
      h2load: firstMatch(['h2load', '--version'], /nghttp2\/(\S+)/),
    },
  };
}
