// The sandbox's Prometheus (Debian's `prometheus` package), as a cluster would run one: in the controller's
// network namespace (it reaches every agent's :15020 over the underlay, and the controller on its loopback),
// scraping every 5 s, its data in the run directory. The controller reads it for the golden metrics
// (--prometheus), and a loopback port-forward makes it reachable from the machine (status: prometheus.url).
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

import { PORTS } from '../common/ports.js';
import { makeCgroup } from './host/cgroup.js';
import { spawnIn } from './host/enter.js';
import type { Plan } from './plan.js';

export const PROMETHEUS_PORT = 9090;
export const PROMETHEUS_BIN = 'prometheus';
export const SCRAPE_INTERVAL = '5s';

export function prometheusAvailable(): boolean {
  return spawnSync('sh', ['-c', `command -v ${PROMETHEUS_BIN}`], { stdio: 'ignore' }).status === 0;
}

export interface PrometheusFiles {
  dir: string;
  config: string;
  data: string;
  log: string;
  cgroup: string;
}

export function prometheusFiles(plan: Plan): PrometheusFiles {
  const dir = join(plan.paths.runDir, 'prometheus');
  return { dir, config: join(dir, 'prometheus.yml'), data: join(dir, 'data'), log: join(plan.paths.runDir, 'logs', 'prometheus.log'), cgroup: join(plan.systemCgroup, 'prometheus') };
}

/** prometheus.yml: the agents (node label = node name) and the controller. */
export function prometheusConfig(plan: Plan): string {
  const agents = plan.nodes.map((n) => `      - targets: ['${n.ip}:${PORTS.metrics}']\n        labels: { node: '${n.name}' }`).join('\n');
  return `# written by weft sandbox up (sandbox ${plan.id})
global:
  scrape_interval: ${SCRAPE_INTERVAL}
  evaluation_interval: ${SCRAPE_INTERVAL}
scrape_configs:
  - job_name: weft-agent
    metrics_path: /metrics
    static_configs:
${agents}
  - job_name: weft-controller
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:${PORTS.controllerWeb}']
`;
}

export function startPrometheus(plan: Plan): number {
  const f = prometheusFiles(plan);
  mkdirSync(f.data, { recursive: true });
  mkdirSync(join(plan.paths.runDir, 'logs'), { recursive: true });
  writeFileSync(f.config, prometheusConfig(plan));
  makeCgroup(f.cgroup);
  const fd = openSync(f.log, 'a');
  try {
    const child = spawnIn(
      { cgroup: f.cgroup, netns: plan.controller.netns },
      [PROMETHEUS_BIN, `--config.file=${f.config}`, `--storage.tsdb.path=${f.data}`, '--storage.tsdb.retention.time=6h', `--web.listen-address=127.0.0.1:${PROMETHEUS_PORT}`, '--web.enable-lifecycle'],
      { env: process.env, stdio: ['ignore', fd, fd], detached: true },
    );
    child.on('error', () => {});
    child.unref();
    return child.pid ?? -1;
  } finally {
    closeSync(fd);
  }
}
