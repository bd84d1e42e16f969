// The admin endpoint (127.0.0.1:15000, loopback only): what this agent is doing, for operators on the
// node. Config dump, certificates (subjects, validity, never keys), open connections, capture state.
import { X509Certificate } from 'node:crypto';
import type { CertificateProvider, WorkloadCertificate } from '../../common/identity.js';
import type { Logger } from '../../common/log.js';
import type { ConnectionTracker } from '../proxy/connections.js';
import type { MeshState } from '../state/mesh-state.js';
import { readFileSync } from 'node:fs';
import { json, serveHttp, type ListenFn, type Listening } from './listen.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const STARTED = new Date().toISOString();

export interface AdminSources {
  state: MeshState;
  connections: ConnectionTracker;
  certs: CertificateProvider;
  /** the certificates held now (the identity manager knows; a plain CertificateProvider does not list) */
  certificates?: () => WorkloadCertificate[];
  /** config stream status (version, ACK/NACK, connected) */
  configStatus?: () => unknown;
  /** capture status (enrolled pods, counters, map sizes) */
  captureStatus?: () => unknown;
  /** authorization: per policy, the local workloads it selects and its decision counts (agent/authz) */
  authzStatus?: () => unknown;
  /** traffic policy per backend and endpoint: ejections, load, EWMA latency, circuits, rate limits, fallbacks (agent/traffic) */
  trafficStatus?: () => unknown;
}

export function certificateSummary(c: WorkloadCertificate): Record<string, unknown> {
  const x = new X509Certificate(c.certChainPem);
  return {
    spiffeId: c.spiffeId,
    serial: x.serialNumber,
    issuer: x.issuer,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    secondsToExpiry: Math.round((c.notAfter.getTime() - Date.now()) / 1000),
    fingerprint256: x.fingerprint256,
  };
}

function bundleSummary(pem: string): Array<Record<string, string>> {
  const out: Array<Record<string, string>> = [];
  for (const m of pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)) {
    const x = new X509Certificate(m[0]);
    out.push({ subject: x.subject, notAfter: new Date(x.validTo).toISOString(), fingerprint256: x.fingerprint256 });
  }
  return out;
}

export function serveAdmin(src: AdminSources, host: string, port: number, log: Logger, listen?: ListenFn): Promise<Listening> {
  return serveHttp('admin', host, port, (_req, url) => {
    switch (url.pathname) {
      case '/':
        return json({ pages: ['/config_dump', '/certs', '/connections', '/capture', '/authz', '/traffic', '/version'] });
      case '/version':
        return json({ agent: VERSION, node: src.state.nodeName, node_version: process.version, pid: process.pid, started: STARTED, configVersion: src.state.config?.version ?? 0 });
      case '/config_dump':
        return json({ status: src.configStatus?.() ?? null, config: src.state.config });
      case '/certs':
        return json({ trustBundle: bundleSummary(src.certs.trustBundlePem()), certificates: (src.certificates?.() ?? []).map(certificateSummary) });
      case '/connections':
        return json({ open: src.connections.size, connections: src.connections.list() });
      case '/capture':
        return json(src.captureStatus?.() ?? { capture: 'not wired' });
      case '/authz':
        return json(src.authzStatus?.() ?? { authz: 'not wired' });
      case '/traffic':
        return json(src.trafficStatus?.() ?? { traffic: 'not wired' });
      default:
        return undefined;
    }
  }, log, listen);
}
