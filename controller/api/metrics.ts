// The controller's own Prometheus metrics (GET /metrics on 15014), so the sandbox's Prometheus and a
// cluster's scrape config see the control plane next to the agents.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Gauge, Registry } from 'prom-client';

import type { MeshConfig } from '../../common/mesh.js';
import type { AgentRegistry } from '../agents/registry.js';

export function createMetricsHandler(o: { config: () => MeshConfig; registry: AgentRegistry; objects: () => number; metrics?: Registry }): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  // `metrics`: the registry other parts of the controller already record into (config timing)
  const reg = o.metrics ?? new Registry();
  const registers = [reg];
  new Gauge({ name: 'weft_controller_config_version', help: 'Version of the MeshConfig the controller serves', registers, collect() { this.set(o.config().version); } });
  new Gauge({ name: 'weft_controller_objects', help: 'Objects in the controller\'s store', registers, collect() { this.set(o.objects()); } });
  new Gauge({
    name: 'weft_controller_workloads',
    help: 'Workloads (pods) known, by meshed',
    labelNames: ['meshed'],
    registers,
    collect() {
      const ws = o.config().workloads;
      this.set({ meshed: 'true' }, ws.filter((w) => w.meshed).length);
      this.set({ meshed: 'false' }, ws.filter((w) => !w.meshed).length);
    },
  });
  new Gauge({
    name: 'weft_controller_agents',
    help: 'Agents by state (connected, disconnected, nack, current: serving the newest config)',
    labelNames: ['state'],
    registers,
    collect() {
      const list = o.registry.list();
      const v = o.config().version;
      this.set({ state: 'connected' }, list.filter((a) => a.connected).length);
      this.set({ state: 'disconnected' }, list.filter((a) => !a.connected).length);
      this.set({ state: 'nack' }, list.filter((a) => a.lastReport?.ack === 'NACK').length);
      this.set({ state: 'current' }, list.filter((a) => (a.lastReport?.configVersion ?? -1) >= v).length);
    },
  });
  return async (req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    const body = await reg.metrics();
    res.writeHead(200, { 'content-type': reg.contentType, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
