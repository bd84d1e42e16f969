// The runner's side of --cpu-prof: profile the node-1 agent (through profile.ts, inside its netns) while
// the closed-loop max-throughput load runs through it, so the profile shows the per-request cost.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { BenchPath } from './paths.js';
import type { HotSpot } from './profile.js';
import { measure, type Measurement, type ScenarioEnv } from './scenarios.js';
import type { Topology } from './topology.js';

const PROFILE_JS = join(fileURLToPath(new URL('.', import.meta.url)), 'profile.js');

export interface AgentProfile {
  file: string;
  scenario: string;
  load: Measurement;
  totalMs?: number;
  idleMs?: number;
  functions?: HotSpot[];
  files?: HotSpot[];
  error?: string;
}

export async function profileAgent(o: { topo: Topology; node: string; file: string; env: ScenarioEnv; path: BenchPath; say: (l: string) => void }): Promise<AgentProfile> {
  const pid = o.topo.agentPid(o.node);
  const netns = o.topo.status.nodes.find((n) => n.name === o.node)?.netns;
  const base = { file: o.file, scenario: 'max' };
  if (!pid || !netns) return { ...base, load: { ok: false }, error: `no agent on ${o.node}` };
  const seconds = o.env.timing.seconds + 1;
  const child = spawn('nsenter', [`--net=/run/netns/${netns}`, '--', process.execPath, PROFILE_JS, String(pid), String(seconds), o.file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const started = new Promise<boolean>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('"started"')) resolve(true);
    });
    child.on('close', () => resolve(false));
  });
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  if (!(await started)) return { ...base, load: { ok: false }, error: `profiler did not start: ${err.trim()}` };
  o.say(`cpu-prof: profiling the ${o.node} agent (pid ${pid}) during max-throughput load`);
  const load = await measure(o.env, o.path, 'max');
  const code = await closed;
  const last = out.trim().split('\n').pop() ?? '';
  if (code !== 0) return { ...base, load, error: `profiler exited ${code}: ${err.trim()}` };
  const r = JSON.parse(last) as { totalMs: number; idleMs: number; functions: HotSpot[]; files: HotSpot[] };
  o.say(`cpu-prof: ${o.file}; top self time: ${r.functions.slice(0, 5).map((f) => `${f.name} ${f.selfPercent}%`).join(', ')}`);
  return { ...base, load, totalMs: r.totalMs, idleMs: r.idleMs, functions: r.functions, files: r.files };
}
