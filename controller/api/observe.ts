// The operators' read API for traffic and mesh state, on the controller's HTTP port (15014), used by the
// `weft` CLI and the operator page:
//   GET /api/v1/stat?resource=[ns[/name]]&window=60&source=auto|agents|prometheus
//        golden metrics (linkerd viz stat's columns) per workload and Service; for one workload also its
//        callers (inbound) and what it calls (outbound); for one Service its backends
//   GET /api/v1/graph?window=60        who calls whom: edges with success rate, RPS, latency and mTLS share
//   GET /api/v1/mesh                   workloads, services, nodes and compiled policies of the config in force
//   GET /api/v1/policies               policy objects with their status (compiled, refused, agents' ACK)
//   GET /api/v1/endpoints              per node and endpoint: TrafficPolicy runtime (ejection, load, EWMA
//        latency, circuit against its limits, rate-limit rejections), from the agents' weft_traffic_* metrics
//   GET /api/v1/version                the controller's version
// Traffic comes from Prometheus when the controller has one (--prometheus URL), else from its own scrapes of
// the agents (--scrape-agents); `source` forces one.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';

import { errorMessage, WeftConfigError } from '../../common/errors.js';
import type { MeshConfig } from '../../common/mesh.js';
import type { AgentRegistry } from '../agents/registry.js';
import { backendRows, callerRows, edges, outboundRows, serviceRows, workloadRows, type WorkloadInfo } from '../telemetry/golden.js';
import type { PrometheusClient } from '../telemetry/prometheus.js';
import { AUTHZ_DECISIONS } from '../telemetry/scraper.js';
import type { Sample } from '../telemetry/exposition.js';
import { authzStatus } from './policy-status.js';
import { ENDPOINT_METRICS, endpointRows } from './endpoint-status.js';
import type { AgentScraper } from '../telemetry/scraper.js';
import type { WindowData } from '../telemetry/window.js';

export const WEFT_VERSION: string = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface ObserveOptions {
  config: () => MeshConfig;
  registry: AgentRegistry;
  scraper?: AgentScraper;
  prometheus?: PrometheusClient;
  /** policy objects as stored, with the store's own refusals, for /api/v1/policies */
  policyObjects?: () => { kind: string; namespace: string; name: string; generation?: number }[];
  refusals?: () => Record<string, string>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

function send(res: ServerResponse, status: number, body: unknown, head = false): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(head ? undefined : text);
}

export function knownWorkloads(cfg: MeshConfig): WorkloadInfo[] {
  const m = new Map<string, WorkloadInfo>();
  for (const w of cfg.workloads) {
    if (w.hostNetwork) continue;
    const k = `${w.namespace}/${w.workloadName}`;
    const i = m.get(k) ?? { namespace: w.namespace, name: w.workloadName, pods: 0, meshed: 0 };
    i.pods++;
    if (w.meshed) i.meshed++;
    m.set(k, i);
  }
  return [...m.values()];
}

export function parseWindow(v: string | null): number {
  if (v === null || v === '') return 60;
  const m = /^(\d+)(s|m)?$/.exec(v);
  const s = m ? Number(m[1]) * (m[2] === 'm' ? 60 : 1) : NaN;
  if (!(s >= 1 && s <= 3600)) throw new WeftConfigError('window', `"${v}" is not a window like 30s, 1m or 60 (1 s to 1 h)`);
  return s;
}

export function createObserveHandler(o: ObserveOptions): Handler {
  async function windowData(seconds: number, source: string): Promise<WindowData> {
    if (source !== 'auto' && source !== 'agents' && source !== 'prometheus') throw new WeftConfigError('source', `"${source}" is not auto, agents or prometheus`);
    if (source === 'prometheus' || (source === 'auto' && o.prometheus)) {
      if (!o.prometheus) throw new WeftConfigError('source', 'prometheus: this controller has no --prometheus URL');
      return o.prometheus.window(seconds);
    }
    if (!o.scraper) throw new WeftConfigError('source', 'this controller has neither --prometheus nor --scrape-agents, so it has no traffic metrics');
    let w = o.scraper.window(seconds);
    if (!w) {
      // just started: take two scrapes a second apart so the first answer is not empty
      await o.scraper.scrapeAll();
      await new Promise((r) => setTimeout(r, 1000));
      await o.scraper.scrapeAll();
      w = o.scraper.window(seconds);
    }
    if (!w) throw new WeftConfigError('source', `no agent could be scraped yet (${JSON.stringify(o.scraper.scrapeErrors())})`);
    return w;
  }

  async function stat(q: URLSearchParams): Promise<unknown> {
    const seconds = parseWindow(q.get('window'));
    const w = await windowData(seconds, q.get('source') ?? 'auto');
    const cfg = o.config();
    const resource = (q.get('resource') ?? '').replace(/^\/+|\/+$/g, '');
    const [ns, name] = resource ? (resource.includes('/') ? resource.split('/', 2) : [resource, undefined]) : [undefined, undefined];
    const known = knownWorkloads(cfg);
    const services = cfg.services.map((s) => ({ namespace: s.namespace, name: s.name }));
    const meta = { window: `${seconds}s`, windowSeconds: w.seconds, source: w.source, at: w.at, ...(o.scraper ? { scrapeErrors: o.scraper.scrapeErrors() } : {}) };
    const inNs = <T extends { namespace: string }>(rows: T[]) => (ns ? rows.filter((r) => r.namespace === ns) : rows);
    if (!name) {
      if (ns && !known.some((k) => k.namespace === ns) && !services.some((s) => s.namespace === ns)) throw new NotFound(`no workload or Service in namespace "${ns}"`);
      return { ...meta, resource: ns ?? '', workloads: inNs(workloadRows(w, known)), services: inNs(serviceRows(w, services)) };
    }
    const key = `${ns}/${name}`;
    const isWorkload = known.some((k) => `${k.namespace}/${k.name}` === key);
    const isService = services.some((s) => `${s.namespace}/${s.name}` === key);
    if (!isWorkload && !isService) throw new NotFound(`no workload or Service "${key}"; see weft stat ${ns}`);
    return {
      ...meta,
      resource: key,
      ...(isWorkload ? { workloads: workloadRows(w, known).filter((r) => `${r.namespace}/${r.name}` === key), inbound: callerRows(w, key), outbound: outboundRows(w, key) } : {}),
      ...(isService ? { services: serviceRows(w, services).filter((r) => `${r.namespace}/${r.name}` === key), backends: backendRows(w, key) } : {}),
    };
  }

  function mesh(): unknown {
    const cfg = o.config();
    return {
      version: cfg.version,
      nodes: cfg.nodes,
      workloads: cfg.workloads.map((w) => ({ namespace: w.namespace, name: w.name, workload: w.workloadName, node: w.node, ips: w.ips, serviceAccount: w.serviceAccount, meshed: w.meshed, mtlsMode: w.mtlsMode })),
      services: cfg.services.map((s) => ({ namespace: s.namespace, name: s.name, clusterIPs: s.clusterIPs, ports: s.ports, endpoints: s.endpoints.length })),
      policies: cfg.policies.map((p) => ({ key: p.key, kind: p.kind, namespace: p.namespace, name: p.name })),
    };
  }

  /** weft_authz_decisions_total per series: from this controller's scrapes of the agents, else Prometheus */
  async function authzDecisions(): Promise<Sample[] | null> {
    if (o.scraper) return o.scraper.latest(AUTHZ_DECISIONS);
    if (o.prometheus) return o.prometheus.query(`sum by (policy, decision) (${AUTHZ_DECISIONS})`, AUTHZ_DECISIONS).catch(() => null);
    return null;
  }

  /** The endpoint view: the latest weft_traffic_* samples, from this controller's scrapes, else Prometheus. */
  async function endpoints(): Promise<unknown> {
    const samples: Record<string, Sample[]> = {};
    if (o.scraper) {
      if (!Object.keys(o.scraper.scrapeErrors()).length && !o.scraper.latest(ENDPOINT_METRICS[0]).length) await o.scraper.scrapeAll();
      for (const name of ENDPOINT_METRICS) samples[name] = o.scraper.latest(name);
    } else if (o.prometheus) {
      const prom = o.prometheus;
      await Promise.all(ENDPOINT_METRICS.map(async (name) => (samples[name] = await prom.query(name, name))));
    } else {
      throw new WeftConfigError('source', 'this controller has neither --prometheus nor --scrape-agents, so it has no endpoint metrics');
    }
    return { source: o.scraper ? 'agents' : 'prometheus', at: new Date().toISOString(), endpoints: endpointRows(samples) };
  }

  async function policies(): Promise<unknown> {
    const cfg = o.config();
    const decisions = cfg.policies.some((p) => p.kind === 'AuthorizationPolicy') ? await authzDecisions() : null;
    const compiled = new Map(cfg.policies.map((p) => [`${p.kind}/${p.namespace}/${p.name}`, p]));
    const refusals = o.refusals?.() ?? {};
    const agents = o.registry.list();
    const acked = agents.filter((a) => a.connected && a.lastReport && a.lastReport.configVersion >= cfg.version && a.lastReport.ack !== 'NACK').length;
    const nacks = agents.filter((a) => a.lastReport?.ack === 'NACK').map((a) => ({ node: a.node, reason: a.lastReport?.nackReason ?? '' }));
    const objs = o.policyObjects?.() ?? cfg.policies.map((p) => ({ kind: p.kind, namespace: p.namespace, name: p.name }));
    return {
      configVersion: cfg.version,
      agents: { total: agents.length, acked, nacks },
      policies: objs.map((p) => {
        const k = `${p.kind}/${p.namespace}/${p.name}`;
        const refused = refusals[k];
        const c = compiled.get(k);
        const status = refused ? 'Refused' : !c ? 'Pending' : nacks.length ? 'NACKed' : acked < agents.length ? 'Propagating' : 'Enforced';
        const authz = c?.kind === 'AuthorizationPolicy' ? authzStatus(c, cfg, agents, decisions) : undefined;
        return { kind: p.kind, namespace: p.namespace, name: p.name, status, ...(refused ? { reason: refused } : {}), ...(authz ?? {}), ...(c ? { compiled: c } : {}) };
      }),
    };
  }

  return async (req, res) => {
    const url = new URL((req.url ?? '/').replace(/^\/+/, '/'), 'http://localhost');
    const path = url.pathname;
    if (!['/api/v1/stat', '/api/v1/graph', '/api/v1/mesh', '/api/v1/policies', '/api/v1/endpoints', '/api/v1/version'].includes(path)) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, { error: `${path} takes GET` });
      return true;
    }
    const head = req.method === 'HEAD';
    try {
      switch (path) {
        case '/api/v1/stat':
          send(res, 200, await stat(url.searchParams), head);
          break;
        case '/api/v1/graph': {
          const seconds = parseWindow(url.searchParams.get('window'));
          const w = await windowData(seconds, url.searchParams.get('source') ?? 'auto');
          send(res, 200, { window: `${seconds}s`, source: w.source, at: w.at, nodes: knownWorkloads(o.config()), edges: edges(w) }, head);
          break;
        }
        case '/api/v1/mesh':
          send(res, 200, mesh(), head);
          break;
        case '/api/v1/policies':
          send(res, 200, await policies(), head);
          break;
        case '/api/v1/endpoints':
          send(res, 200, await endpoints(), head);
          break;
        case '/api/v1/version':
          send(res, 200, { controller: WEFT_VERSION, configVersion: o.config().version }, head);
          break;
      }
    } catch (e) {
      if (e instanceof NotFound) send(res, 404, { error: { code: 'WEFT_ERR_NOT_FOUND', message: e.message } }, head);
      else if (e instanceof WeftConfigError) send(res, 400, { error: e.toJSON() }, head);
      else send(res, 502, { error: { code: 'WEFT_ERR_TELEMETRY', message: errorMessage(e) } }, head);
    }
    return true;
  };
}

class NotFound extends Error {}
