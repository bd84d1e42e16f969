// The mesh's certificate authority: one signing root (ECDSA P-256), the trust bundle peers verify with, and
// leaf issuance. Who may get which certificate is decided elsewhere (csr-authorizer.ts); this module only
// signs. Root rotation keeps the previous root in the trust bundle until every leaf it signed has expired,
// so agents can move over at their own pace.
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';

import type { CryptoKey } from '../../common/x509.js';
import { certToPem, curveOfPrivateKeyPem, ECDSA_SHA256, generateEcKeyPair, privateKeyFromPem, privateKeyToPem, subtle, x509 } from '../../common/x509.js';
import type { WorkloadCertificate } from '../../common/identity.js';
import type { Logger } from '../../common/log.js';
import { silentLogger } from '../../common/log.js';
import { CaRootError } from './errors.js';
import type { CaState, RootMaterial, RootStore } from './root-store.js';

export const DEFAULT_LEAF_TTL_MS = 24 * 3600 * 1000;
export const DEFAULT_ROOT_TTL_MS = 10 * 365 * 24 * 3600 * 1000;
/** leaves start a little in the past so a peer whose clock lags does not reject a fresh certificate */
const CLOCK_SKEW_MS = 60 * 1000;

export interface CertificateAuthorityOptions {
  trustDomain: string;
  /** lifetime of issued leaves; default 24 h */
  leafTtlMs?: number;
  /** lifetime of generated roots; default 10 years */
  rootTtlMs?: number;
  logger?: Logger;
  now?: () => number;
}

export interface IssueParams {
  publicKey: x509.PublicKeyType;
  uris?: string[];
  dnsNames?: string[];
  ips?: string[];
  ttlMs?: number;
}

interface Root {
  cert: x509.X509Certificate;
  certPem: string;
  keyPem: string;
  key: CryptoKey;
}

interface PreviousRoot {
  certPem: string;
  /** ISO time after which no leaf it signed can still be valid */
  retireAfter: string;
}

function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive INTEGER
  return b.toString('hex');
}

export class CertificateAuthority {
  readonly trustDomain: string;
  readonly leafTtlMs: number;
  private readonly rootTtlMs: number;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly store: RootStore | undefined;
  private root!: Root;
  private previous: PreviousRoot[] = [];
  private readonly listeners = new Set<() => void>();

  private constructor(opts: CertificateAuthorityOptions, store: RootStore | undefined) {
    this.trustDomain = opts.trustDomain;
    this.leafTtlMs = opts.leafTtlMs ?? DEFAULT_LEAF_TTL_MS;
    this.rootTtlMs = opts.rootTtlMs ?? DEFAULT_ROOT_TTL_MS;
    this.log = opts.logger ?? silentLogger;
    this.now = opts.now ?? Date.now;
    this.store = store;
  }

  /**
   * Loads the root from `store`, or takes the operator's `operatorRoot` (files they brought), or generates
   * one on first start and persists it in `store`. Without a store the root lives in memory (tests).
   */
  static async open(opts: CertificateAuthorityOptions & { store?: RootStore; operatorRoot?: RootMaterial }): Promise<CertificateAuthority> {
    const ca = new CertificateAuthority(opts, opts.store);
    if (opts.operatorRoot) {
      ca.root = await ca.loadRoot(opts.operatorRoot, 'the operator-supplied CA files');
      ca.log.info('using operator-supplied root', { subject: ca.root.cert.subject, notAfter: ca.root.cert.notAfter.toISOString() });
      return ca;
    }
    const state = opts.store ? await opts.store.load() : undefined;
    if (state) {
      ca.root = await ca.loadRoot(state.current, opts.store!.describe());
      ca.previous = state.previous;
      ca.dropRetired();
      ca.log.info('loaded root', { from: opts.store!.describe(), notAfter: ca.root.cert.notAfter.toISOString(), previousRoots: ca.previous.length });
      return ca;
    }
    ca.root = await ca.generateRoot();
    if (opts.store?.create) {
      // another replica may have created the root since load(): use the winner's, never overwrite it
      const stored = await opts.store.create({ current: { certPem: ca.root.certPem, keyPem: ca.root.keyPem }, previous: [] });
      if (stored.current.certPem !== ca.root.certPem) {
        ca.root = await ca.loadRoot(stored.current, opts.store.describe());
        ca.previous = stored.previous;
        ca.dropRetired();
        ca.log.info('another replica created the root first; using it', { from: opts.store.describe(), notAfter: ca.root.cert.notAfter.toISOString() });
        return ca;
      }
    } else {
      await ca.persist();
    }
    ca.log.info('generated new root', { store: opts.store?.describe() ?? 'memory', notAfter: ca.root.cert.notAfter.toISOString() });
    return ca;
  }

  rootCertPem(): string {
    return this.root.certPem;
  }

  /** the current root first, then every previous root still needed by leaves it signed */
  trustBundlePem(): string {
    this.dropRetired();
    return [this.root.certPem, ...this.previous.map((p) => p.certPem)].join('');
  }

  /** called when the trust bundle changes (rotation, retirement); returns an unsubscribe function */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Switches signing to a new root (generated, or `material` from the operator). The old root stays in the
   * trust bundle until every leaf it may have signed has expired (now + leaf lifetime).
   */
  async rotateRoot(material?: RootMaterial): Promise<void> {
    const next = material ? await this.loadRoot(material, 'the new root') : await this.generateRoot();
    const retireAfter = new Date(this.now() + this.leafTtlMs).toISOString();
    this.previous = [{ certPem: this.root.certPem, retireAfter }, ...this.previous];
    this.root = next;
    await this.persist();
    this.log.info('rotated root', { previousRetiresAfter: retireAfter, notAfter: next.cert.notAfter.toISOString() });
    this.emit();
  }

  /**
   * Takes the CA state another replica stored (it rotated the root, or retired a previous one): this replica
   * then signs with the same root and serves the same trust bundle. A state that does not load (a key that
   * does not match its certificate, an expired root) is refused with CaRootError and changes nothing.
   */
  async adopt(state: CaState, from: string): Promise<boolean> {
    if (state.current.certPem === this.root.certPem && JSON.stringify(state.previous) === JSON.stringify(this.previous)) return false;
    const root = state.current.certPem === this.root.certPem ? this.root : await this.loadRoot(state.current, from);
    this.root = root;
    this.previous = state.previous.filter((p) => Date.parse(p.retireAfter) > this.now());
    this.log.info('adopted the CA state another replica stored', { from, notAfter: root.cert.notAfter.toISOString(), previousRoots: this.previous.length });
    this.emit();
    return true;
  }

  /** Signs a leaf for `params.publicKey`. The caller has decided it may have these names. */
  async issue(params: IssueParams): Promise<x509.X509Certificate> {
    const now = this.now();
    const ttl = params.ttlMs ?? this.leafTtlMs;
    const notAfter = new Date(Math.min(now + ttl, this.root.cert.notAfter.getTime()));
    const names: x509.JsonGeneralNames = [
      ...(params.uris ?? []).map((value) => ({ type: 'url' as const, value })),
      ...(params.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
      ...(params.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
    ];
    for (const ip of params.ips ?? []) if (!isIP(ip)) throw new CaRootError(`cannot issue for IP SAN "${ip}": not an IP address`);
    return x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: 'O=weft',
      issuer: this.root.cert.subjectName,
      // short-lived test certificates are backdated less, so "half life" stays meaningful
      notBefore: new Date(now - Math.min(CLOCK_SKEW_MS, ttl / 10)),
      notAfter,
      publicKey: params.publicKey,
      signingKey: this.root.key,
      signingAlgorithm: ECDSA_SHA256,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension(names),
        await x509.AuthorityKeyIdentifierExtension.create(this.root.cert),
        await x509.SubjectKeyIdentifierExtension.create(params.publicKey),
      ],
    });
  }

  /** The chain for a leaf: the leaf, then the root when the root is not self-signed (an operator intermediate). */
  chainPem(leaf: x509.X509Certificate): string {
    const selfSigned = this.root.cert.subject === this.root.cert.issuer;
    return certToPem(leaf) + (selfSigned ? '' : this.root.certPem);
  }

  /** Generates a key and a certificate for names the caller vouches for (the controller's own serving cert, tests). */
  async issueWithNewKey(params: Omit<IssueParams, 'publicKey'>): Promise<{ certChainPem: string; keyPem: string; cert: x509.X509Certificate }> {
    const keys = await generateEcKeyPair('P-256');
    const cert = await this.issue({ ...params, publicKey: keys.publicKey });
    return { certChainPem: this.chainPem(cert), keyPem: await privateKeyToPem(keys.privateKey), cert };
  }

  /** A workload certificate for one SPIFFE ID, key generated here (tests of other areas; the mesh uses CSRs). */
  async issueWorkloadCert(spiffeId: string, ttlMs?: number): Promise<WorkloadCertificate> {
    const { certChainPem, keyPem, cert } = await this.issueWithNewKey({ uris: [spiffeId], ...(ttlMs !== undefined ? { ttlMs } : {}) });
    return { spiffeId, certChainPem, keyPem, notBefore: cert.notBefore, notAfter: cert.notAfter };
  }

  private async generateRoot(): Promise<Root> {
    const keys = await generateEcKeyPair('P-256');
    const now = this.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerial(),
      name: `O=weft, CN=weft root ${this.trustDomain} ${new Date(now).toISOString()}`,
      notBefore: new Date(now - CLOCK_SKEW_MS),
      notAfter: new Date(now + this.rootTtlMs),
      keys,
      signingAlgorithm: ECDSA_SHA256,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return { cert, certPem: certToPem(cert), keyPem: await privateKeyToPem(keys.privateKey), key: keys.privateKey };
  }

  private async loadRoot(m: RootMaterial, where: string): Promise<Root> {
    let cert: x509.X509Certificate;
    try {
      cert = new x509.X509Certificate(m.certPem);
    } catch (e) {
      throw new CaRootError(`${where}: the CA certificate is not a PEM X.509 certificate; supply the root's certificate PEM`, { cause: e });
    }
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    if (!bc?.ca) throw new CaRootError(`${where}: the certificate "${cert.subject}" is not a CA (basicConstraints CA:TRUE missing); supply a CA certificate`);
    if (cert.notAfter.getTime() <= this.now()) throw new CaRootError(`${where}: the CA certificate expired at ${cert.notAfter.toISOString()}; rotate the root`);
    let curve;
    try {
      curve = await curveOfPrivateKeyPem(m.keyPem);
    } catch (e) {
      throw new CaRootError(`${where}: the CA key is not a readable private key PEM`, { cause: e });
    }
    if (!curve) throw new CaRootError(`${where}: the CA key must be ECDSA P-256 or P-384`);
    // Normalise to PKCS#8 through node:crypto so SEC1 ("EC PRIVATE KEY") files work too.
    const { createPrivateKey } = await import('node:crypto');
    const pkcs8 = createPrivateKey(m.keyPem).export({ type: 'pkcs8', format: 'pem' }).toString();
    const key = await privateKeyFromPem(pkcs8, curve);
    const pub = await cert.publicKey.export();
    const probe = new Uint8Array([1, 2, 3]);
    const sig = await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, probe);
    if (!(await subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, pub, sig, probe))) {
      throw new CaRootError(`${where}: the CA key does not belong to the CA certificate "${cert.subject}"`);
    }
    return { cert, certPem: certToPem(cert), keyPem: pkcs8, key };
  }

  private dropRetired(): void {
    const before = this.previous.length;
    const now = this.now();
    this.previous = this.previous.filter((p) => Date.parse(p.retireAfter) > now);
    if (this.previous.length !== before) {
      this.log.info('retired previous root(s)', { count: before - this.previous.length });
      void this.persist().catch((e: unknown) => this.log.error('persisting CA state failed', { err: e }));
      queueMicrotask(() => this.emit());
    }
  }

  private async persist(): Promise<void> {
    if (!this.store) return;
    const state: CaState = { current: { certPem: this.root.certPem, keyPem: this.root.keyPem }, previous: this.previous };
    await this.store.save(state);
  }

  private emit(): void {
    for (const fn of this.listeners) fn();
  }
}
