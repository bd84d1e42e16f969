// `--cpu-prof` for a running agent. Node refuses --cpu-prof in NODE_OPTIONS and the sandbox starts the
// agents itself, so the bench profiles a live agent through its inspector instead: SIGUSR1 opens it on
// 127.0.0.1:9229 inside the agent's own network namespace, and this module — run there with nsenter —
// drives the V8 profiler over the DevTools protocol and writes a standard .cpuprofile
// (chrome://inspect, VS Code, speedscope). `topFunctions` summarizes where the time went.
//
//   nsenter --net=/run/netns/<node netns> node dist/bench/profile.js <pid> <seconds> <out.cpuprofile>
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'undici';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

export interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame; hitCount?: number; children?: number[] }[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface HotSpot {
  name: string;
  where: string;
  selfMs: number;
  selfPercent: number;
}

/** Self time per function (and per file), highest first, as a share of the busy (non-idle) time. */
export function topFunctions(p: CpuProfile, n = 15): { functions: HotSpot[]; files: HotSpot[]; totalMs: number; idleMs: number } {
  const selfUs = new Map<number, number>();
  if (p.samples && p.timeDeltas) {
    for (let i = 0; i < p.samples.length; i++) selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0));
  } else {
    const total = p.nodes.reduce((a, x) => a + (x.hitCount ?? 0), 0) || 1;
    for (const x of p.nodes) selfUs.set(x.id, ((x.hitCount ?? 0) / total) * (p.endTime - p.startTime));
  }
  const idleIds = new Set(p.nodes.filter((x) => x.callFrame.functionName === '(idle)').map((x) => x.id));
  const allUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const idleUs = [...idleIds].reduce((a, id) => a + (selfUs.get(id) ?? 0), 0);
  for (const id of idleIds) selfUs.delete(id);
  const totalUs = allUs - idleUs || 1;
  const byFn = new Map<string, HotSpot>();
  const byFile = new Map<string, HotSpot>();
  const short = (url: string) => url.replace(/^file:\/\//, '').replace(/^.*\/(dist|node_modules)\//, '$1/') || '(native)';
  for (const x of p.nodes) {
    const us = selfUs.get(x.id) ?? 0;
    if (!us) continue;
    const f = x.callFrame;
    const name = f.functionName || '(anonymous)';
    const where = f.url ? `${short(f.url)}:${f.lineNumber + 1}` : '(native or V8)';
    const key = `${name}@${where}`;
    const a = byFn.get(key) ?? { name, where, selfMs: 0, selfPercent: 0 };
    a.selfMs += us / 1000;
    byFn.set(key, a);
    const file = f.url ? short(f.url) : name.startsWith('(') ? name : '(native or V8)';
    const b = byFile.get(file) ?? { name: file, where: '', selfMs: 0, selfPercent: 0 };
    b.selfMs += us / 1000;
    byFile.set(file, b);
  }
  const finish = (m: Map<string, HotSpot>) =>
    [...m.values()]
      .map((h) => ({ ...h, selfMs: Math.round(h.selfMs * 10) / 10, selfPercent: Math.round((h.selfMs / (totalUs / 1000)) * 1000) / 10 }))
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, n);
  return { functions: finish(byFn), files: finish(byFile), totalMs: Math.round(allUs / 100) / 10, idleMs: Math.round(idleUs / 100) / 10 };
}

async function inspectorUrl(deadline: number): Promise<string> {
  for (;;) {
    try {
      const r = await fetch('http://127.0.0.1:9229/json/list');
      const list = (await r.json()) as { webSocketDebuggerUrl?: string }[];
      const url = list[0]?.webSocketDebuggerUrl;
      if (url) return url;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('the agent did not open its inspector on 127.0.0.1:9229 after SIGUSR1');
    await sleep(100);
  }
}

async function profile(pid: number, seconds: number, out: string): Promise<void> {
  process.kill(pid, 'SIGUSR1');
  const ws = new WebSocket(await inspectorUrl(Date.now() + 10_000));
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve());
    ws.addEventListener('error', () => reject(new Error('inspector WebSocket failed')));
  });
  let seq = 0;
  const pending = new Map<number, (r: { result?: unknown; error?: { message: string } }) => void>();
  ws.addEventListener('message', (ev) => {
    const msg = JSON.parse(String(ev.data)) as { id?: number; result?: unknown; error?: { message: string } };
    if (msg.id !== undefined) pending.get(msg.id)?.(msg);
  });
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve, reject) => {
      const id = ++seq;
      pending.set(id, (r) => (r.error ? reject(new Error(`${method}: ${r.error.message}`)) : resolve(r.result)));
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call('Profiler.enable');
  await call('Profiler.setSamplingInterval', { interval: 200 });
  await call('Profiler.start');
  process.stdout.write(JSON.stringify({ started: true }) + '\n');
  await sleep(seconds * 1000);
  const { profile: p } = (await call('Profiler.stop')) as { profile: CpuProfile };
  await call('Profiler.disable');
  ws.close();
  writeFileSync(out, JSON.stringify(p));
  process.stdout.write(JSON.stringify({ written: out, ...topFunctions(p) }) + '\n');
}

if (process.argv[1]?.endsWith('profile.js') && process.argv.length >= 5) {
  const [pid, seconds, out] = process.argv.slice(2);
  profile(Number(pid), Number(seconds), out!).catch((e: unknown) => {
    process.stderr.write(`profile failed: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
