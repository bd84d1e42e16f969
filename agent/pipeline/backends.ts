// The backends of one config version: each Service port with its ready endpoints at the target port,
// resolved once per version, and direct (pod IP) destinations built on first use.
import type { MeshState } from '../state/mesh-state.js';
import type { Backend, BackendTable, EndpointRef } from './stages.js';

export function endpointId(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export class VersionBackends implements BackendTable {
  private readonly byService = new Map<string, Backend>();
  private readonly directs = new Map<string, Backend>();

  constructor(private readonly state: MeshState) {
    for (const svc of state.config.services) {
      const name = `${svc.namespace}/${svc.name}`;
      for (const p of svc.ports) {
        if (p.protocol !== 'TCP') continue;
        const target = p.targetPort || p.port;
        const endpoints: EndpointRef[] = [];
        for (const e of svc.endpoints) {
          if (!e.ready) continue;
          const workload = e.workloadUid ? state.workloadByUid(e.workloadUid) : state.workloadByIp(e.ip);
          endpoints.push(Object.freeze({ id: endpointId(e.ip, target), ip: e.ip, port: target, workload, nodeName: e.node || workload?.node }));
        }
        this.byService.set(`${name}:${p.port}`, Object.freeze({ key: `${name}:${p.port}`, service: svc, port: p.port, endpoints: Object.freeze(endpoints) }));
      }
    }
  }

  service(namespacedName: string, port: number): Backend | undefined {
    return this.byService.get(`${namespacedName}:${port}`);
  }

  direct(ip: string, port: number): Backend {
    const key = endpointId(ip, port);
    let b = this.directs.get(key);
    if (!b) {
      const workload = this.state.workloadByIp(ip);
      const ep: EndpointRef = Object.freeze({ id: key, ip, port, workload, nodeName: workload?.node });
      b = Object.freeze({ key, service: undefined, port, endpoints: Object.freeze([ep]) });
      // Bounded: a caller dialling many addresses outside the mesh must not grow this without limit.
      if (this.directs.size > 4096) this.directs.clear();
      this.directs.set(key, b);
    }
    return b;
  }
}
