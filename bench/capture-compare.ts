// Capture alone: eBPF connect4 redirect vs iptables REDIRECT, to the same kind of listener, with nothing
// else on the path. (bench/capture.ts, the capture area's benchmark, compares redirected with direct
// connections and times the proxy's lookup; this compares the two capture mechanisms.)
//
//   node dist/bench/capture-compare.js [--connections N] [--concurrency C] [--reps R] [--json]
//
// Two pod stand-ins from the kernel tests' lab (netns + cgroup under a cgroup root of our own): pod 0 is
// enrolled in Weft's capture, whose connect4 rewrites VIP:80 to 127.0.0.1:15001 inside the pod; pod 1
// has an iptables `nat OUTPUT ... REDIRECT --to-ports 15001` rule, as a sidecar mesh installs. Each pod
// has the same listener on 127.0.0.1:15001 that accepts and closes. A client in each pod opens and
// closes connections to VIP:80; runs alternate eBPF/iptables. Reported: connects per second and the
// client's CPU per connect (user + system: connect4 and the OUTPUT hook both run in its connect()).
// Separate pods keep iptables' conntrack and nat hooks out of the eBPF pod entirely, as on a real node
// without a sidecar. Needs root; everything it creates is removed at exit.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type net from 'node:net';
import { parseArgs } from 'node:util';

import { silentLogger } from '../common/log.js';
import { RedirectManager } from '../agent/redirect/manager.js';
import { uninstallPins } from '../agent/redirect/pins.js';
import { netnsCookie } from '../native/netns.js';
import { closeServer, createLab, listenInNetns, runIn, type Lab } from '../test/helpers/netns.js';
import type { ConnectLoopResult } from './load/closed-loop.js';
import { spread, type Spread } from './stats.js';

const VIP = '10.97.250.1';
const LISTEN_PORT = 15001;

export interface CaptureCompareResult {
  connections: number;
  concurrency: number;
  reps: number;
  ebpf: { connectsPerSecond: Spread; cpuUsPerConnect: Spread; p50: number; p99: number; runs: ConnectLoopResult[] };
  iptables: { connectsPerSecond: Spread; cpuUsPerConnect: Spread; p50: number; p99: number; runs: ConnectLoopResult[] };
}

function summarizeRuns(runs: ConnectLoopResult[]) {
  return {
    connectsPerSecond: spread(runs.map((r) => r.connectsPerSecond)),
    // (median of an even count is a mean of two: keep one decimal)
    cpuUsPerConnect: spread(runs.map((r) => r.cpuUsPerConnect)),
    p50: Math.round(spread(runs.map((r) => r.latencyUs.p50)).median),
    p99: Math.round(spread(runs.map((r) => r.latencyUs.p99)).median),
    runs,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '4000' },
      concurrency: { type: 'string', default: '8' },
      reps: { type: 'string', default: '3' },
      json: { type: 'boolean', default: false },
    },
  });
  const count = Number(values.connections);
  const concurrency = Number(values.concurrency);
  const reps = Number(values.reps);
  const loadCli = fileURLToPath(new URL('./load/cli.js', import.meta.url));
  let lab: Lab | undefined;
  let mgr: RedirectManager | undefined;
  const servers: net.Server[] = [];
  const stop = () => cleanup().finally(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  async function cleanup(): Promise<void> {
    for (const s of servers.splice(0)) await closeServer(s);
    mgr?.close();
    mgr = undefined;
    if (lab) {
      uninstallPins(lab.pinDir, silentLogger);
      lab.destroy();
      lab = undefined;
    }
  }
  try {
    lab = createLab('bcap', 2);
    const [ebpfPod, iptPod] = lab.pods as [Lab['pods'][0], Lab['pods'][0]];
    for (const p of [ebpfPod, iptPod]) {
      // a route to the VIP in both pods: iptables rewrites after the route lookup, connect4 before it
      execFileSync('ip', ['-n', p.netns, 'route', 'add', `${VIP}/32`, 'via', p.nodeIpv4, 'dev', 'eth0']);
      const server = await listenInNetns(p.netnsPath, '127.0.0.1', LISTEN_PORT, (s) => {
        s.on('error', () => {});
        s.destroy();
      });
      servers.push(server);
    }
    execFileSync('nsenter', [`--net=${iptPod.netnsPath}`, '--', 'iptables', '-w', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', `${VIP}/32`, '--dport', '80', '-j', 'REDIRECT', '--to-ports', String(LISTEN_PORT)]);
    mgr = RedirectManager.open({
      pinDir: lab.pinDir,
      cgroupRoot: lab.cgroupRoot,
      proxy: { ipv4: '127.0.0.1', port: LISTEN_PORT },
      hostNetnsCookie: netnsCookie(lab.nodeNetnsPath),
      logger: silentLogger,
    });
    mgr.reconcile({ pods: [{ cgroupId: ebpfPod.cgroupId, uid: ebpfPod.uid, mode: 'PERMISSIVE' }], destinations: [{ ip: VIP, port: 80 }] });

    const loop = async (p: typeof ebpfPod, n: number): Promise<ConnectLoopResult> => {
      const r = await runIn(p.cgroupPath, p.netnsPath, 'taskset', ['-c', '0', process.execPath, loadCli, 'connect-loop', JSON.stringify({ host: VIP, port: 80, count: n, concurrency })], 300_000);
      if (r.code !== 0) throw new Error(`connect loop in ${p.netns} failed: ${r.stderr.trim().slice(-300)}`);
      const res = JSON.parse(r.stdout) as ConnectLoopResult;
      if (res.failed) throw new Error(`${res.failed} of ${n} connects failed in ${p.netns}: ${res.firstError ?? ''} (capture did not redirect)`);
      return res;
    };
    // warm up both (JIT, neighbour and conntrack tables), then alternate
    await loop(ebpfPod, Math.min(500, count));
    await loop(iptPod, Math.min(500, count));
    const e: ConnectLoopResult[] = [];
    const i: ConnectLoopResult[] = [];
    for (let r = 0; r < reps; r++) {
      e.push(await loop(ebpfPod, count));
      i.push(await loop(iptPod, count));
    }
    const result: CaptureCompareResult = { connections: count, concurrency, reps, ebpf: summarizeRuns(e), iptables: summarizeRuns(i) };
    if (values.json) process.stdout.write(JSON.stringify(result) + '\n');
    else {
      const line = (name: string, x: CaptureCompareResult['ebpf']) =>
        `  ${name.padEnd(9)} ${String(x.connectsPerSecond.median).padStart(7)} connects/s (${x.connectsPerSecond.min}–${x.connectsPerSecond.max})   client CPU ${x.cpuUsPerConnect.median.toFixed(1)} µs/connect   connect p50 ${x.p50} µs p99 ${x.p99} µs\n`;
      process.stdout.write(`capture alone: ${count} connects × ${reps} alternating runs, ${concurrency} at a time\n${line('eBPF', result.ebpf)}${line('iptables', result.iptables)}`);
    }
  } finally {
    await cleanup();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`capture-compare failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
