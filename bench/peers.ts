// The programs the bench runs besides Weft: the upstream (nginx answering 200 with a 1 KB body, and a TCP
// echo server) in each server pod, and the peers — nginx (worker_processes 1) and HAProxy (nbthread 1) —
// as sidecars in the non-meshed client pod, reached the way a sidecar is: iptables REDIRECT in the
// client pod's own network namespace. Each has its own config, pid and log files in the bench's
// directory; the Debian system services are never used.
import { type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { listeningPorts } from '../sandbox/mesh.js';
import type { PodPlan } from '../sandbox/plan.js';
import { killTree } from './procs.js';
import { runInNetns, SERVICE_PORT, type Scope, startInPod, UPSTREAM } from './topology.js';

export const BODY_BYTES = 1024;
export const GRPC_PATH = '/bench.Echo/Ping';

/** Sidecar listener ports: one per destination (VIP:port), as a sidecar has a listener per original destination. */
export const SIDECAR_PORTS: Record<'nginx' | 'haproxy', Record<Scope, { http: number; h2c: number; tcp?: number }>> = {
  nginx: { 'same-node': { http: 15101, h2c: 15102 }, 'cross-node': { http: 15111, h2c: 15112 } },
  haproxy: { 'same-node': { http: 15201, h2c: 15202, tcp: 15203 }, 'cross-node': { http: 15211, h2c: 15212, tcp: 15213 } },
};

export interface RunningProgram {
  name: string;
  pid: number;
  child: ChildProcess;
  log: string;
  stop(): void;
}

function start(name: string, pod: PodPlan, argv: string[], dir: string): RunningProgram {
  const log = join(dir, `${name}.log`);
  const fd = openSync(log, 'a');
  let child: ChildProcess;
  try {
    child = startInPod(pod, argv, fd);
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) throw new Error(`could not start ${name} (${argv[0]})`);
  const pid = child.pid;
  return {
    name,
    pid,
    child,
    log,
    stop() {
      killTree(pid, 'SIGKILL');
    },
  };
}

/** Waits until `pid`'s network namespace has a listener on each port. */
export async function waitListening(p: RunningProgram, ports: number[], timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (p.child.exitCode !== null) throw new Error(`${p.name} exited with code ${p.child.exitCode}; see ${p.log}`);
    const l = listeningPorts(p.pid);
    if (ports.every((x) => l.has(x))) return;
    await sleep(50);
  }
  throw new Error(`${p.name} did not listen on ${ports.join(', ')} within ${timeoutMs / 1000}s; see ${p.log}`);
}

function nginxMain(dir: string, name: string, http: string): string {
  return `# ${name}: written by the Weft bench
daemon off;
master_process on;
worker_processes 1;
user root;
pid ${dir}/${name}.pid;
error_log ${dir}/${name}.error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/${name}-tmp/body;
  proxy_temp_path ${dir}/${name}-tmp/proxy;
  fastcgi_temp_path ${dir}/${name}-tmp/fastcgi;
  uwsgi_temp_path ${dir}/${name}-tmp/uwsgi;
  scgi_temp_path ${dir}/${name}-tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  http2_max_requests 1000000;
${http}}
`;
}

/** nginx in a server pod: 200 with a 1 KB body on HTTP/1.1, the same and a gRPC-shaped answer on h2c. */
export function upstreamNginxConf(dir: string, name: string): string {
  const body = 'a'.repeat(BODY_BYTES);
  return nginxMain(
    dir,
    name,
    `  server {
    listen ${UPSTREAM.http} reuseport;
    location / { default_type text/plain; return 200 "${body}"; }
  }
  server {
    listen ${UPSTREAM.h2c} http2;
    location / { default_type text/plain; return 200 "${body}"; }
    location ${GRPC_PATH} { default_type application/grpc; add_trailer grpc-status 0; add_trailer grpc-message ""; return 200 "${body}"; }
  }
`,
  );
}

/** nginx as a sidecar: one listener per destination, pooled keep-alive upstream connections (as Envoy). */
export function sidecarNginxConf(dir: string, name: string, servers: Record<Scope, string>): string {
  const blocks = (Object.keys(servers) as Scope[])
    .map((scope) => {
      const ip = servers[scope];
      const p = SIDECAR_PORTS.nginx[scope];
      const u = scope === 'same-node' ? 'a' : 'b';
      return `  upstream ${u}_http { server ${ip}:${UPSTREAM.http}; keepalive 64; }
  upstream ${u}_grpc { server ${ip}:${UPSTREAM.h2c}; keepalive 64; }
  server {
    listen 127.0.0.1:${p.http};
    location / { proxy_pass http://${u}_http; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:${p.h2c} http2;
    location / { proxy_pass http://${u}_http; proxy_http_version 1.1; proxy_set_header Connection ""; }
    location ${GRPC_PATH} { grpc_pass grpc://${u}_grpc; }
  }
`;
    })
    .join('');
  return nginxMain(dir, name, blocks);
}

export function sidecarHaproxyConf(dir: string, name: string, servers: Record<Scope, string>): string {
  const blocks = (Object.keys(servers) as Scope[])
    .map((scope) => {
      const ip = servers[scope];
      const p = SIDECAR_PORTS.haproxy[scope];
      const u = scope === 'same-node' ? 'a' : 'b';
      return `frontend ${u}_http
  bind 127.0.0.1:${p.http}
  default_backend ${u}_http
backend ${u}_http
  server s ${ip}:${UPSTREAM.http}
frontend ${u}_h2c
  bind 127.0.0.1:${p.h2c} proto h2
  default_backend ${u}_h2c
backend ${u}_h2c
  server s ${ip}:${UPSTREAM.h2c} proto h2
listen ${u}_tcp
  mode tcp
  bind 127.0.0.1:${p.tcp}
  server s ${ip}:${UPSTREAM.tcp}
`;
    })
    .join('');
  return `# ${name}: written by the Weft bench
global
  nbthread 1
  maxconn 4096
  pidfile ${dir}/${name}.pid
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  option http-keep-alive
  http-reuse always
${blocks}`;
}

export function startNginx(pod: PodPlan, dir: string, name: string, conf: string, ports: number[]): Promise<RunningProgram> {
  mkdirSync(join(dir, `${name}-tmp`), { recursive: true });
  const file = join(dir, `${name}.conf`);
  writeFileSync(file, conf);
  const p = start(name, pod, ['nginx', '-p', dir, '-c', file], dir);
  return waitListening(p, ports).then(() => p);
}

export function startHaproxy(pod: PodPlan, dir: string, name: string, conf: string, ports: number[]): Promise<RunningProgram> {
  const file = join(dir, `${name}.cfg`);
  writeFileSync(file, conf);
  const p = start(name, pod, ['haproxy', '-db', '-f', file], dir);
  return waitListening(p, ports).then(() => p);
}

export function startEcho(pod: PodPlan, dir: string, name: string, loadCli: string): Promise<RunningProgram> {
  const p = start(name, pod, [process.execPath, loadCli, 'echo-server', String(UPSTREAM.tcp)], dir);
  return waitListening(p, [UPSTREAM.tcp]).then(() => p);
}

const CHAIN = 'WEFT_BENCH';

/**
 * The sidecar capture in the client pod's netns: nat OUTPUT jumps to our chain, and `redirectTo` replaces
 * its rules so each destination VIP:port goes to the chosen sidecar's listener (or nowhere: direct).
 */
export class SidecarRedirect {
  constructor(private readonly netns: string) {}

  private async ipt(args: string[], allowFail = false): Promise<void> {
    const r = await runInNetns(this.netns, ['iptables', '-w', '-t', 'nat', ...args]);
    if (r.code !== 0 && !allowFail) throw new Error(`iptables ${args.join(' ')} in netns ${this.netns} failed: ${r.stderr.trim()}`);
  }

  async install(): Promise<void> {
    await this.ipt(['-N', CHAIN], true);
    await this.ipt(['-F', CHAIN]);
    const r = await runInNetns(this.netns, ['iptables', '-w', '-t', 'nat', '-C', 'OUTPUT', '-p', 'tcp', '-j', CHAIN]);
    if (r.code !== 0) await this.ipt(['-A', 'OUTPUT', '-p', 'tcp', '-j', CHAIN]);
  }

  /** rules: [vip, servicePort, sidecarPort] */
  async redirectTo(rules: [string, number, number][]): Promise<void> {
    await this.ipt(['-F', CHAIN]);
    for (const [vip, port, to] of rules) await this.ipt(['-A', CHAIN, '-p', 'tcp', '-d', `${vip}/32`, '--dport', String(port), '-j', 'REDIRECT', '--to-ports', String(to)]);
  }

  async clear(): Promise<void> {
    await this.ipt(['-F', CHAIN], true);
  }
}

/** REDIRECT rules that send both servers' VIPs to `peer`'s listeners. */
export function sidecarRules(peer: 'nginx' | 'haproxy', vips: Record<Scope, string>): [string, number, number][] {
  const out: [string, number, number][] = [];
  for (const scope of Object.keys(vips) as Scope[]) {
    const p = SIDECAR_PORTS[peer][scope];
    out.push([vips[scope], SERVICE_PORT.http, p.http], [vips[scope], SERVICE_PORT.h2c, p.h2c]);
    if (p.tcp) out.push([vips[scope], SERVICE_PORT.tcp, p.tcp]);
  }
  return out;
}
