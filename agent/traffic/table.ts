// The TrafficPolicy in force for each backend, built once per config version from the compiled entries:
// a port-specific policy wins over an all-ports one; among equals the oldest, then by <ns>/<name> (Gateway
// API policy attachment). Also the destination-side index for rate limiting: pod "ip:targetPort" -> the
// policies with a rateLimit on a Service that pod backs.
import type { Service } from '../../common/mesh.js';
import type { TrafficEntry } from '../../common/policy.js';
import type { CompiledTraffic } from '../../common/policy/traffic.js';

export interface AppliedPolicy {
  /** "<ns>/<name>" of the TrafficPolicy */
  name: string;
  traffic: CompiledTraffic;
}

function better(a: TrafficEntry, b: TrafficEntry): boolean {
  const pa = a.traffic.port !== undefined;
  const pb = b.traffic.port !== undefined;
  if (pa !== pb) return pa;
  if (a.traffic.createdMs !== b.traffic.createdMs) return a.traffic.createdMs < b.traffic.createdMs;
  return `${a.namespace}/${a.name}` < `${b.namespace}/${b.name}`;
}

export class TrafficTable {
  /** backend key "<ns>/<svc>:<port>" -> policy */
  private readonly byBackend = new Map<string, AppliedPolicy>();
  /** "podIp:targetPort" -> rate-limited policies (with the backend key they came through) */
  private readonly rateLimited = new Map<string, { policy: AppliedPolicy; backend: string }[]>();

  constructor(entries: readonly TrafficEntry[], services: readonly Service[]) {
    const chosen = new Map<string, TrafficEntry>();
    const byService = new Map<string, TrafficEntry[]>();
    for (const e of entries) {
      const l = byService.get(e.traffic.service);
      if (l) l.push(e);
      else byService.set(e.traffic.service, [e]);
    }
    for (const svc of services) {
      const list = byService.get(`${svc.namespace}/${svc.name}`);
      if (!list) continue;
      for (const p of svc.ports) {
        if (p.protocol !== 'TCP') continue;
        const key = `${svc.namespace}/${svc.name}:${p.port}`;
        for (const e of list) {
          if (e.traffic.port !== undefined && e.traffic.port !== p.port) continue;
          const cur = chosen.get(key);
          if (!cur || better(e, cur)) chosen.set(key, e);
        }
        const e = chosen.get(key);
        if (!e) continue;
        const applied: AppliedPolicy = { name: `${e.namespace}/${e.name}`, traffic: e.traffic };
        this.byBackend.set(key, applied);
        if (!e.traffic.rateLimit) continue;
        const target = p.targetPort || p.port;
        for (const ep of svc.endpoints) {
          const k = `${ep.ip}:${target}`;
          const l = this.rateLimited.get(k);
          if (l) l.push({ policy: applied, backend: key });
          else this.rateLimited.set(k, [{ policy: applied, backend: key }]);
        }
      }
    }
  }

  forBackend(key: string): AppliedPolicy | undefined {
    return this.byBackend.get(key);
  }

  rateLimitsFor(podIp: string, port: number): readonly { policy: AppliedPolicy; backend: string }[] | undefined {
    return this.rateLimited.get(`${podIp}:${port}`);
  }

  backends(): IterableIterator<[string, AppliedPolicy]> {
    return this.byBackend.entries();
  }
}
