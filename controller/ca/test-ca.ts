// A ready-made CA for tests of every area (proxy, agent, sandbox): an in-memory root and one-call issuance
// of workload and server certificates whose PEMs plug straight into node:tls. It is the real CA
// (authority.ts) without persistence, so what passes against it passes against the controller.
//
//   const ca = await createTestCa();                       // trust domain cluster.local
//   const w = await ca.issueWorkloadCert('spiffe://cluster.local/ns/default/sa/web');
//   tls.createServer({ key: w.keyPem, cert: w.certChainPem, ca: ca.trustBundlePem(), requestCert: true });
//   const provider = ca.certificateProvider();             // a CertificateProvider for the proxy
import type { CertificateProvider, IdentityChange, WorkloadCertificate } from '../../common/identity.js';
import { DEFAULT_TRUST_DOMAIN, spiffeId } from '../../common/mesh.js';
import { CertificateAuthority } from './authority.js';

export interface TestCa {
  ca: CertificateAuthority;
  trustDomain: string;
  rootCertPem: string;
  trustBundlePem(): string;
  /** spiffe://<td>/ns/<ns>/sa/<sa> */
  spiffeId(namespace: string, serviceAccount: string): string;
  issueWorkloadCert(spiffeId: string, opts?: { ttlMs?: number }): Promise<WorkloadCertificate>;
  /** a serving certificate with DNS/IP SANs (and optionally URIs), e.g. for the controller in tests */
  issueServerCert(opts: { dnsNames?: string[]; ips?: string[]; uris?: string[]; ttlMs?: number }): Promise<{ certChainPem: string; keyPem: string }>;
  /** a CertificateProvider that issues (and re-issues past half life) from this CA */
  certificateProvider(opts?: { ttlMs?: number }): LocalCertificateProvider;
}

export async function createTestCa(opts: { trustDomain?: string; leafTtlMs?: number } = {}): Promise<TestCa> {
  const trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const ca = await CertificateAuthority.open({ trustDomain, ...(opts.leafTtlMs !== undefined ? { leafTtlMs: opts.leafTtlMs } : {}) });
  return {
    ca,
    trustDomain,
    rootCertPem: ca.rootCertPem(),
    trustBundlePem: () => ca.trustBundlePem(),
    spiffeId: (ns, sa) => spiffeId(trustDomain, ns, sa),
    issueWorkloadCert: (id, o) => ca.issueWorkloadCert(id, o?.ttlMs),
    issueServerCert: async (o) => {
      const { certChainPem, keyPem } = await ca.issueWithNewKey(o);
      return { certChainPem, keyPem };
    },
    certificateProvider: (o) => new LocalCertificateProvider(ca, o?.ttlMs),
  };
}

/** CertificateProvider backed directly by a CA (no CSR round trip): for proxy and sandbox tests. */
export class LocalCertificateProvider implements CertificateProvider {
  private readonly cache = new Map<string, Promise<WorkloadCertificate>>();
  private readonly listeners = new Set<(change: IdentityChange) => void>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly ca: CertificateAuthority,
    private readonly ttlMs?: number,
  ) {
    // the CA's key or root changed: every certificate and the bundle
    this.unsubscribe = ca.onChange(() => this.emit({ spiffeIds: [...this.cache.keys()], trustBundle: true }));
  }

  async get(id: string): Promise<WorkloadCertificate> {
    const cached = this.cache.get(id);
    if (cached) {
      const c = await cached;
      const half = c.notBefore.getTime() + (c.notAfter.getTime() - c.notBefore.getTime()) / 2;
      if (Date.now() < half) return c;
    }
    const p = this.ca.issueWorkloadCert(id, this.ttlMs);
    this.cache.set(id, p);
    p.catch(() => this.cache.delete(id));
    const c = await p;
    if (cached) this.emit({ spiffeIds: [id], trustBundle: false });
    return c;
  }

  trustBundlePem(): string {
    return this.ca.trustBundlePem();
  }

  onChange(listener: (change: IdentityChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.unsubscribe();
  }

  private emit(change: IdentityChange): void {
    for (const fn of this.listeners) fn(change);
  }
}
