// `npm run bench [-- --quick]`: Weft side by side with direct, nginx and HAProxy in one sandbox of its
// own, and capture alone (eBPF vs iptables). The composition root: it builds the topology, starts the
// upstreams and peers, runs the scenarios interleaved path by path, and writes bench/results/<date>.json
// and the results section of bench/README.md. Everything it started is removed on exit, error or Ctrl-C.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { runCapture, type CaptureOutcome } from './capture-runner.js';
import { FEATURES } from './features/index.js';
import { runFeatures, type FeatureResult } from './features/run.js';
import { profileAgent, type AgentProfile } from './profile-run.js';
import { describeMachine, loadAverage } from './machine.js';
import { buildPaths, PATH_IDS, type BenchPath, type PathId } from './paths.js';
import { SidecarRedirect, sidecarHaproxyConf, sidecarNginxConf, SIDECAR_PORTS, startEcho, startHaproxy, startNginx, upstreamNginxConf, type RunningProgram } from './peers.js';
import { cpuCount, pin, processTree, rssKiB } from './procs.js';
import { renderReport, spliceReadme } from './report.js';
import { measure, SCENARIO_IDS, type Measurement, type ScenarioEnv, type ScenarioId } from './scenarios.js';
import { evaluateTargets, pathKey, summarize, type Runs } from './summary.js';
import { baselineFrom, type Baseline } from './targets.js';
import { buildTopology, removeTopology, type Scope, type Topology, UPSTREAM } from './topology.js';

const HERE = dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = join(HERE, '..', '..');
const LOAD_CLI = join(HERE, 'load', 'cli.js');

interface Profile {
  reps: number;
  seconds: number;
  warmupSeconds: number;
  rate: number;
  scenarios: Record<Scope, ScenarioId[]>;
}

// Sized to stay under ~10 minutes on 2 cores: every scenario on the same node, the latency and
// throughput ones across nodes.
const FULL: Profile = {
  reps: 3,
  seconds: 2.5,
  warmupSeconds: 0.5,
  rate: 1000,
  scenarios: { 'same-node': SCENARIO_IDS, 'cross-node': ['ol4', 'ol16', 'max'] },
};
const QUICK: Profile = {
  reps: 1,
  seconds: 1,
  warmupSeconds: 0.3,
  rate: 1000,
  scenarios: { 'same-node': ['ol4', 'max', 'h2', 'tcp', 'churn'], 'cross-node': ['ol4'] },
};

const say = (l: string) => process.stderr.write(`[bench] ${l}\n`);

function need(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      reps: { type: 'string' },
      seconds: { type: 'string' },
      paths: { type: 'string' },
      out: { type: 'string', default: join(ROOT, 'bench', 'results') },
      readme: { type: 'string', default: join(ROOT, 'bench', 'README.md') },
      'no-readme': { type: 'boolean', default: false },
      'no-capture': { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      features: { type: 'string' },
      baseline: { type: 'string' },
      render: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`usage: npm run bench [-- --quick] [--reps N] [--seconds S] [--paths direct,weft,nginx,haproxy]
                 [--out DIR] [--readme FILE | --no-readme] [--no-capture] [--cpu-prof]
                 [--features all|none|ID,ID] [--baseline RESULTS.json]
       npm run bench -- --render RESULTS.json   re-evaluate the targets of a recorded run and rewrite the table
features (per-feature cost rows, bench/features/): ${FEATURES.map((f) => f.id).join(', ') || 'none registered'}
`);
    return 0;
  }
  if (values.render) return render(values.render, values['no-readme'] ? undefined : values.readme!, values.baseline);
  if (process.platform !== 'linux' || process.getuid?.() !== 0) {
    say('the bench needs Linux and root (it builds a sandbox of network namespaces, cgroups and eBPF)');
    return 2;
  }
  const cpus = cpuCount();
  if (cpus < 2) {
    say('the bench needs at least 2 CPUs: one for the proxy under test, one for the load generator and upstream');
    return 2;
  }
  const profile = { ...(values.quick ? QUICK : FULL) };
  if (values.reps) profile.reps = Number(values.reps);
  if (values.seconds) profile.seconds = Number(values.seconds);
  const pathIds = (values.paths?.split(',') ?? PATH_IDS) as PathId[];
  for (const p of pathIds) if (!PATH_IDS.includes(p)) throw new Error(`--paths: unknown path "${p}"; known: ${PATH_IDS.join(', ')}`);
  if (!pathIds.includes('direct')) pathIds.unshift('direct');
  // Per-feature rows: all registered ones in a full run, none in --quick unless asked for.
  const featureArg = values.features ?? (values.quick ? 'none' : 'all');
  const features = featureArg === 'all' ? FEATURES : featureArg === 'none' ? [] : featureArg.split(',').map((id) => {
    const f = FEATURES.find((x) => x.id === id);
    if (!f) throw new Error(`--features: unknown feature "${id}"; known: ${FEATURES.map((x) => x.id).join(', ') || 'none'}`);
    return f;
  });
  const baseline = loadBaseline(values.baseline, values.out!);
  const missing = ['nginx', 'haproxy', 'wrk', 'h2load', 'taskset', 'iptables', 'nsenter'].filter((c) => !need(c));
  if (missing.some((c) => ['nginx', 'taskset', 'iptables', 'nsenter'].includes(c))) {
    say(`missing programs: ${missing.join(', ')}; run \`node scripts/prepare.mjs\` (npm run bench does) to install them`);
    return 2;
  }
  if (missing.includes('wrk')) for (const s of Object.values(profile.scenarios)) s.splice(s.indexOf('max') >>> 0, s.includes('max') ? 1 : 0);
  if (missing.includes('h2load')) for (const k of Object.keys(profile.scenarios) as Scope[]) profile.scenarios[k] = profile.scenarios[k].filter((s) => s !== 'h2' && s !== 'grpc');

  const proxyCpu = 1;
  const loadCpu = 0;
  const started = Date.now();
  const date = new Date().toISOString();
  const machine = describeMachine(join(ROOT, 'package.json'));
  const notes: string[] = [];
  if (values.quick) notes.push('Quick run (`--quick`): one short repetition, a smoke check of the harness, not a measurement.');
  if (os.loadavg()[0]! > cpus) notes.push(`The machine was busy (load average ${machine.loadStart} on ${cpus} cores) while this ran: other processes shared both cores, so absolute figures are noisy; only the interleaved ratios mean much.`);

  notes.push(
    'Every path ends at the same server pod through its Service ClusterIP: direct and the sidecar peers from a pod outside the mesh (the peers reached by iptables REDIRECT in that pod), Weft from a pod in the mesh (eBPF connect4). Proxy CPU is the proxies\' on-CPU time (per-thread schedstat) divided by the requests they carried, warm-up included; for Weft it is the whole agent.',
    'HTTP/2 through the nginx sidecar is HTTP/2 in and HTTP/1.1 to the upstream (nginx speaks HTTP/2 upstream only for gRPC, via grpc_pass); HAProxy and Weft keep HTTP/2 on both sides. The gRPC-shaped test is a unary POST with a gRPC frame answered by nginx with grpc-status trailers.',
  );
  const dir = mkdtempSync(join(os.tmpdir(), 'weft-bench-'));
  const id = `bn${(process.pid % 36 ** 6).toString(36)}`;
  const programs: RunningProgram[] = [];
  let topo: Topology | undefined;
  const ac = new AbortController();
  let signals = 0;
  const onSignal = (sig: string) => {
    signals++;
    if (signals > 1) {
      say(`${sig} again: exiting without cleanup; run \`weft sandbox down --id ${id}\``);
      process.exit(130);
    }
    say(`${sig}: stopping, then removing everything the bench started`);
    ac.abort();
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  const checkAbort = () => {
    if (ac.signal.aborted) throw new Error('interrupted');
  };

  let capture: CaptureOutcome | undefined;
  let agentProfile: AgentProfile | undefined;
  let featureResults: FeatureResult[] = [];
  const runs: Runs = {};
  const rssIdleKiB: Record<string, number> = {};
  const agentRssIdleKiB: Record<string, number> = {};
  let paths: BenchPath[] = [];
  try {
    say(`sandbox ${id} (2 nodes), work dir ${dir}`);
    topo = await buildTopology({ id, dir, say, signal: ac.signal });
    const t = topo;
    if (t.meshUnavailable) notes.push(`Weft paths not available: ${t.meshUnavailable}.`);

    // Proxies on one core; upstream and load on the other.
    for (const node of ['node-1', 'node-2']) {
      const pid = t.agentPid(node);
      if (pid) pin(processTree(pid), proxyCpu);
    }
    checkAbort();
    const upstreams = [...Object.entries(t.servers).map(([scope, srv]) => [scope, srv] as const), ...Object.entries(t.plainServers).map(([scope, srv]) => [`${scope}-plain`, srv] as const)];
    for (const [scope, srv] of upstreams) {
      const name = `upstream-${scope}`;
      const p = await startNginx(srv.pod, dir, name, upstreamNginxConf(dir, name), [UPSTREAM.http, UPSTREAM.h2c]);
      programs.push(p);
      pin(processTree(p.pid), loadCpu);
      const e = await startEcho(srv.pod, dir, `echo-${scope}`, LOAD_CLI);
      programs.push(e);
      pin(processTree(e.pid), loadCpu);
    }
    say(`upstreams: nginx (1 KB, h2c, gRPC-shaped) and TCP echo in ${t.servers['same-node'].pod.name} (node-1) and ${t.servers['cross-node'].pod.name} (node-2), meshed and outside the mesh, CPU ${loadCpu}`);

    // the sidecar peers call the servers outside the mesh, as the direct path does (topology.ts plainServers)
    const serverIps = { 'same-node': t.plainServers['same-node'].pod.ip, 'cross-node': t.plainServers['cross-node'].pod.ip };
    const sidecar: Record<'nginx' | 'haproxy', number | string> = { nginx: 'not started', haproxy: 'not started' };
    for (const peer of ['nginx', 'haproxy'] as const) {
      if (!pathIds.includes(peer)) continue;
      try {
        const ports = Object.values(SIDECAR_PORTS[peer]).flatMap((p) => Object.values(p) as number[]);
        const name = `sidecar-${peer}`;
        const p =
          peer === 'nginx'
            ? await startNginx(t.plainClient, dir, name, sidecarNginxConf(dir, name, serverIps), ports)
            : await startHaproxy(t.plainClient, dir, name, sidecarHaproxyConf(dir, name, serverIps), ports);
        programs.push(p);
        pin(processTree(p.pid), proxyCpu);
        sidecar[peer] = p.pid;
      } catch (e) {
        sidecar[peer] = `${peer} did not start: ${(e as Error).message}`;
      }
    }
    const redirect = new SidecarRedirect(t.plainClient.netns);
    await redirect.install();

    const scopes: Scope[] = ['same-node', 'cross-node'];
    paths = buildPaths({ topo: t, redirect, sidecar }, scopes, pathIds);
    for (const node of ['node-1', 'node-2']) {
      const pid = t.agentPid(node);
      if (pid && !t.meshUnavailable) agentRssIdleKiB[node] = rssKiB(processTree(pid));
    }

    const env: ScenarioEnv = { topo: t, loadCli: LOAD_CLI, dir, loadCpu, timing: { seconds: profile.seconds, warmupSeconds: profile.warmupSeconds, rate: profile.rate } };
    const warm: ScenarioEnv = { ...env, timing: { seconds: values.quick ? 0.5 : 2, warmupSeconds: 0.2, rate: profile.rate } };

    // Warm up (JIT, connection pools) and check each path once; a path that fails here is reported as
    // not available with the reason rather than measured.
    for (const p of paths) {
      checkAbort();
      if (p.unavailable) continue;
      await p.activate();
      const m = await measure(warm, p, 'ol4');
      say(`warm-up ${p.scope} ${p.id}: ${m.ok ? `ok, p50 ${m.latencyUs?.p50} µs${m.errors ? ` (${m.errors} failed or unanswered: ${m.error ?? ''})` : ''}` : `FAILED: ${m.error}`}`);
      if (!m.ok) p.unavailable = `failed its warm-up check: ${m.error ?? 'no response'}`;
    }

    const live = paths.filter((p) => !p.unavailable);
    for (let rep = 0; rep < profile.reps; rep++) {
      for (const p of live) {
        checkAbort();
        const key = pathKey(p.id, p.scope);
        await p.activate();
        const roots = p.proxyPids();
        if (roots.length) {
          const idle = rssKiB(roots.flatMap((r) => processTree(r)));
          rssIdleKiB[key] = Math.min(rssIdleKiB[key] ?? Infinity, idle);
        }
        for (const sid of profile.scenarios[p.scope]) {
          checkAbort();
          if (p.unsupported[sid]) continue;
          const m: Measurement = await measure(env, p, sid);
          ((runs[key] ??= {})[sid] ??= []).push(m);
          say(`rep ${rep + 1}/${profile.reps} ${key} ${sid}: ${m.ok ? `${m.rps} rps, p50 ${m.latencyUs?.p50 ?? '-'} µs, p99 ${m.latencyUs?.p99 ?? '-'} µs${m.cpuUsPerReq !== undefined ? `, ${m.cpuUsPerReq} µs CPU/req` : ''}` : `FAILED: ${m.error}`}`);
        }
      }
    }
    await redirect.clear();

    if (features.length) {
      say(`per-feature cost rows: ${features.map((f) => f.id).join(', ')}`);
      featureResults = await runFeatures({ features, env, paths: live, reps: profile.reps, say, checkAbort });
    }

    const weftSame = live.find((p) => p.id === 'weft' && p.scope === 'same-node');
    if (values['cpu-prof']) {
      if (!weftSame) notes.push('--cpu-prof: no Weft path to profile in this run.');
      else {
        checkAbort();
        const file = join(values.out!, 'profiles', `${date.slice(0, 19).replace(/:/g, '-')}Z-agent-node-1.cpuprofile`);
        mkdirSync(dirname(file), { recursive: true });
        agentProfile = await profileAgent({ topo: t, node: 'node-1', file, env, path: weftSame, say });
      }
    }

    if (!values['no-capture']) {
      checkAbort();
      capture = await runCapture({ root: ROOT, quick: values.quick!, say, signal: ac.signal });
    }
  } catch (e) {
    say(`failed: ${(e as Error).message}`);
    notes.push(`The run stopped early: ${(e as Error).message}`);
    if (ac.signal.aborted) return await cleanup(130);
    await cleanup(1);
    return 1;
  }
  return await cleanup(0);

  async function cleanup(code: number): Promise<number> {
    for (const p of programs) p.stop();
    if (topo) {
      say(`removing sandbox ${id}`);
      try {
        await removeTopology(id);
      } catch (e) {
        say(`sandbox down failed: ${(e as Error).message}; run \`weft sandbox down --id ${id}\``);
      }
    }
    if (code === 0) writeResults();
    rmSync(dir, { recursive: true, force: true });
    return code;
  }

  function writeResults(): void {
    machine.loadEnd = loadAverage();
    const unavailable = Object.fromEntries(paths.filter((p) => p.unavailable).map((p) => [pathKey(p.id, p.scope), p.unavailable!]));
    const summary = summarize(runs, paths);
    const targets = evaluateTargets({ summary, agentRssIdleKiB, unavailable, ...(baseline ? { baseline } : {}) });
    mkdirSync(values.out!, { recursive: true });
    const file = join(values.out!, `${date.slice(0, 19).replace(/:/g, '-')}Z${values.quick ? '-quick' : ''}.json`);
    const method = { reps: profile.reps, seconds: profile.seconds, warmupSeconds: profile.warmupSeconds, rate: profile.rate, proxyCpu, loadCpu, scenarios: profile.scenarios };
    const results = {
      schema: 1,
      date,
      mode: values.quick ? 'quick' : 'full',
      durationSeconds: (Date.now() - started) / 1000,
      machine,
      method,
      paths: paths.map((p) => ({ key: pathKey(p.id, p.scope), id: p.id, scope: p.scope, label: p.label, ...(p.unavailable ? { unavailable: p.unavailable } : {}), unsupported: p.unsupported })),
      targets,
      agentRssIdleKiB,
      rssIdleKiB,
      summary,
      runs,
      ...(capture ? { capture: { ...capture.report, ...(capture.raw ? { raw: capture.raw } : {}) } } : {}),
      ...(agentProfile ? { agentProfile } : {}),
      ...(featureResults.length ? { features: featureResults } : {}),
      notes,
    };
    writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
    say(`results: ${file}`);
    const section = renderReport({ ...results, mode: results.mode as 'full' | 'quick', resultsFile: relative(ROOT, file), paths: results.paths, ...(capture ? { capture: capture.report } : {}), ...(agentProfile ? { agentProfile } : {}), ...(featureResults.length ? { features: featureResults } : {}) });
    process.stdout.write(section + '\n');
    if (!values['no-readme']) {
      const readme = existsSync(values.readme!) ? readFileSync(values.readme!, 'utf8') : '# Weft benchmarks\n';
      writeFileSync(values.readme!, spliceReadme(readme, section));
      say(`table: ${values.readme}`);
    }
  }
}

/** Re-evaluates a recorded run's targets (e.g. after a target's definition changed) and rewrites its JSON and the table. */
function render(file: string, readme: string | undefined, baselineFile: string | undefined): number {
  const r = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> & Parameters<typeof renderReport>[0] & { date: string; agentRssIdleKiB: Record<string, number> };
  const unavailable = Object.fromEntries(r.paths.filter((p) => p.unavailable).map((p) => [p.key, p.unavailable!]));
  // The baseline is the newest full run before this one.
  const older = baselineFile ?? (readdirSync(dirname(file)).filter((f) => /^\d{4}-.*Z\.json$/.test(f) && f < basename(file)).sort().reverse().map((f) => join(dirname(file), f))[0]);
  const baseline = older ? loadBaseline(older, dirname(file)) : undefined;
  r.targets = evaluateTargets({ summary: r.summary, agentRssIdleKiB: r.agentRssIdleKiB, unavailable, ...(baseline ? { baseline } : {}) });
  writeFileSync(file, JSON.stringify(r, null, 2) + '\n');
  const section = renderReport({ ...r, resultsFile: relative(ROOT, file) });
  process.stdout.write(section + '\n');
  if (readme) writeFileSync(readme, spliceReadme(existsSync(readme) ? readFileSync(readme, 'utf8') : '# Weft benchmarks\n', section));
  return 0;
}

/** The previous full run's results (the newest full-run JSON in the results directory), for "no regression" targets. */
function loadBaseline(file: string | undefined, dir: string): Baseline | undefined {
  const candidates = file ? [file] : existsSync(dir) ? readdirSync(dir).filter((f) => /^\d{4}-.*Z\.json$/.test(f)).sort().reverse().map((f) => join(dir, f)) : [];
  for (const f of candidates) {
    try {
      const b = baselineFrom(relative(ROOT, f), JSON.parse(readFileSync(f, 'utf8')) as Parameters<typeof baselineFrom>[1]);
      if (b) return b;
    } catch (e) {
      if (file) throw new Error(`--baseline ${file}: ${(e as Error).message}`);
    }
  }
  return undefined;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    say(`failed: ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
  },
);
