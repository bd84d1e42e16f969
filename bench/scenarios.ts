// One measurement: a load scenario on one path. The generator runs inside the path's client pod pinned to
// the load core; meanwhile the bench reads the proxies' CPU time (per-thread schedstat, ns resolution,
// with /proc/<pid>/stat utime+stime kept as a cross-check) and samples their RSS.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { OpenLoopResult } from './load/open-loop.js';
import type { ClosedLoopResult } from './load/closed-loop.js';
import type { BenchPath } from './paths.js';
import { BODY_BYTES, GRPC_PATH } from './peers.js';
import { cpuTime, processTree, rssSampler } from './procs.js';
import type { Percentiles } from './stats.js';
import { grpcFrame, h2loadArgs, parseH2load, parseWrk, wrkArgs, type ToolResult } from './tools.js';
import { runInPod, SERVICE_PORT, type Topology } from './topology.js';

export type ScenarioId = 'ol4' | 'ol16' | 'max' | 'h2' | 'grpc' | 'tcp' | 'churn';
export const SCENARIO_IDS: ScenarioId[] = ['ol4', 'ol16', 'max', 'h2', 'grpc', 'tcp', 'churn'];

export const SCENARIO_LABELS: Record<ScenarioId, string> = {
  ol4: `HTTP/1.1 ${BODY_BYTES} B, open loop 1000 rps, 4 connections`,
  ol16: `HTTP/1.1 ${BODY_BYTES} B, open loop 1000 rps, 16 connections`,
  max: 'HTTP/1.1, closed loop max throughput (wrk, 16 connections)',
  h2: 'HTTP/2 (h2load, 4 connections × 10 streams)',
  grpc: 'gRPC-shaped unary over HTTP/2 (h2load, 4 × 10)',
  tcp: 'plain TCP round trips, 64 B echo, 1 connection',
  churn: 'connection churn: new connection per HTTP request, 4 in parallel',
};

export interface Timing {
  /** measured seconds per scenario */
  seconds: number;
  warmupSeconds: number;
  rate: number;
}

export interface Measurement {
  ok: boolean;
  error?: string;
  rps?: number;
  /** µs; open loop: from the due time */
  latencyUs?: Record<string, number>;
  /** proxy CPU µs per request (schedstat), and from /proc/<pid>/stat for comparison */
  cpuUsPerReq?: number;
  cpuUsPerReqStat?: number;
  rssMaxKiB?: number;
  requests?: number;
  errors?: number;
  /** open loop: requests due in the measured period */
  scheduled?: number;
  /** open loop: how late the generator sent (p99, µs) */
  sendLagP99Us?: number;
  /** open loop: the latency HdrHistogram (µs), compressed base64, for re-analysis */
  histogram?: string;
}

export interface ScenarioEnv {
  topo: Topology;
  loadCli: string;
  dir: string;
  loadCpu: number;
  timing: Timing;
}

function target(_env: ScenarioEnv, path: BenchPath) {
  return path.vip;
}

async function inClient(env: ScenarioEnv, path: BenchPath, argv: string[], timeoutMs: number): Promise<string> {
  const r = await runInPod(path.client, ['taskset', '-c', String(env.loadCpu), ...argv], timeoutMs);
  if (r.code !== 0) throw new Error(`${argv[0] === process.execPath ? 'load generator' : argv[0]} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-400)}`);
  return r.stdout;
}

function nodeLoad(env: ScenarioEnv, mode: string, opts: unknown): string[] {
  return [process.execPath, env.loadCli, mode, JSON.stringify(opts)];
}

/** Runs one scenario on one path and measures the proxies while it runs. */
export async function measure(env: ScenarioEnv, path: BenchPath, id: ScenarioId): Promise<Measurement> {
  const t = env.timing;
  const vip = target(env, path);
  const roots = path.proxyPids();
  const pids = () => roots.flatMap((p) => processTree(p));
  const cpu0 = cpuTime(pids());
  const rss = rssSampler(() => roots);
  const timeoutMs = (t.seconds + t.warmupSeconds) * 1000 + 30_000;
  let m: Measurement;
  let total: number | undefined;
  try {
    switch (id) {
      case 'ol4':
      case 'ol16': {
        const r = JSON.parse(
          await inClient(env, path, nodeLoad(env, 'open-loop', { target: { host: vip, port: SERVICE_PORT.http, path: '/' }, rate: t.rate, connections: id === 'ol4' ? 4 : 16, durationMs: t.seconds * 1000, warmupMs: t.warmupSeconds * 1000, drainMs: 3000 }), timeoutMs),
        ) as OpenLoopResult;
        total = r.completedTotal;
        const failed = r.errors + r.badStatus;
        // A path that cannot keep up still has a latency (the unanswered requests are charged their wait):
        // it is reported with its error count, not dropped.
        m = {
          ok: r.completed > 0,
          ...(failed ? { error: `${failed} of ${r.scheduled} requests failed${r.firstError ? `: ${r.firstError}` : ''}` } : {}),
          rps: r.rps,
          latencyUs: { ...r.latencyUs },
          requests: r.completed,
          errors: failed,
          scheduled: r.scheduled,
          sendLagP99Us: r.sendLagUs.p99,
          histogram: r.histogram,
        };
        break;
      }
      case 'tcp':
      case 'churn': {
        const opts =
          id === 'tcp'
            ? { host: vip, port: SERVICE_PORT.tcp, connections: 1, messageBytes: 64, durationMs: t.seconds * 1000, warmupMs: t.warmupSeconds * 1000 }
            : { target: { host: vip, port: SERVICE_PORT.http, path: '/' }, concurrency: 4, durationMs: t.seconds * 1000, warmupMs: t.warmupSeconds * 1000 };
        const r = JSON.parse(await inClient(env, path, nodeLoad(env, id === 'tcp' ? 'tcp-rr' : 'churn', opts), timeoutMs)) as ClosedLoopResult;
        total = r.completedTotal;
        m = { ok: r.errors === 0 && r.completed > 0, ...(r.errors ? { error: `${r.errors} failed: ${r.firstError ?? ''}` } : {}), rps: r.rps, latencyUs: { ...r.latencyUs }, requests: r.completed, errors: r.errors };
        break;
      }
      case 'max': {
        const r = parseWrk(await inClient(env, path, wrkArgs(`http://${vip}:${SERVICE_PORT.http}/`, 16, t.seconds), timeoutMs));
        total = r.requests;
        m = fromTool(r);
        break;
      }
      case 'h2':
      case 'grpc': {
        let grpc: { bodyFile: string } | undefined;
        if (id === 'grpc') {
          const bodyFile = join(env.dir, 'grpc-request.bin');
          writeFileSync(bodyFile, grpcFrame(Buffer.alloc(64, 0x62)));
          grpc = { bodyFile };
        }
        const url = `http://${vip}:${SERVICE_PORT.h2c}${id === 'grpc' ? GRPC_PATH : '/'}`;
        const r = parseH2load(await inClient(env, path, h2loadArgs(url, { connections: 4, streams: 10, seconds: t.seconds, warmupSeconds: t.warmupSeconds, ...(grpc ? { grpc } : {}) }), timeoutMs));
        // h2load counts only the measured period; its warm-up ran at about the same rate
        total = Math.round(r.rps * (t.seconds + t.warmupSeconds));
        m = fromTool(r);
        break;
      }
    }
  } catch (e) {
    m = { ok: false, error: (e as Error).message };
  }
  const rssMax = rss.stop();
  const cpu1 = cpuTime(pids());
  if (roots.length && m.ok && total) {
    m.cpuUsPerReq = round1((cpu1.schedUs - cpu0.schedUs) / total);
    m.cpuUsPerReqStat = round1((cpu1.statUs - cpu0.statUs) / total);
    m.rssMaxKiB = rssMax;
  }
  return m;
}

function fromTool(r: ToolResult): Measurement {
  return { ok: r.errors === 0 && r.requests > 0, ...(r.errors ? { error: `${r.errors} requests failed` } : {}), rps: Math.round(r.rps), latencyUs: r.latencyUs, requests: r.requests, errors: r.errors };
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
