// The agent's identity manager: one certificate per service account with a pod on this node, obtained by
// CSR from the controller (the key never leaves the agent), rotated at a fraction of its lifetime (half by
// default), retried with exponential backoff while the controller is unreachable, and kept on disk. A
// rotation only swaps what get() returns: connections already open keep the TLS context they were made with,
// new connections use the new certificate, so rotating never drops traffic.
import type { CertificateProvider, IdentityChange, WorkloadCertificate } from '../../common/identity.js';
import { WeftError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { silentLogger } from '../../common/log.js';
import { createSpiffeCsrPemNative, generateP256KeyPair, keyObjectToPem } from '../../common/csr.js';
import { IdentityDiskCache } from './disk-cache.js';

export interface CsrSigner {
  signCsr(csrPem: string): Promise<{ certChainPem: string; trustBundlePem: string; notBefore: Date; notAfter: Date }>;
}

export class IdentityUnavailableError extends WeftError {
  constructor(spiffeId: string, cause: unknown) {
    super('WEFT_ERR_IDENTITY_UNAVAILABLE', `no certificate for ${spiffeId} yet: ${(cause as Error)?.message ?? String(cause)}; the agent keeps retrying (is the controller reachable, and does this service account have a pod on this node?)`, { cause });
  }
}

export interface IdentityManagerOptions {
  signer: CsrSigner;
  /** where certificates, keys and the trust bundle are kept across restarts; none: memory only */
  stateDir?: string;
  /** trust bundle to start with (the mesh root the agent was installed with) */
  initialTrustBundlePem?: string;
  /** fraction of a certificate's lifetime after which it is renewed; default 0.5 */
  rotateAt?: number;
  /** backoff between failed attempts: initial and cap; default 500 ms .. 30 s */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** how long get() waits for a first certificate before rejecting; default 15 s */
  getTimeoutMs?: number;
  logger?: Logger;
  now?: () => number;
}

interface Entry {
  cert?: WorkloadCertificate;
  /** the in-flight fetch, if any */
  fetching?: Promise<WorkloadCertificate>;
  timer?: NodeJS.Timeout;
  lastError?: unknown;
}

export class IdentityManager implements CertificateProvider {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<(change: IdentityChange) => void>();
  /** the trust bundle changed since the last emit (a CSR answer may carry a new one) */
  private bundleChanged = false;
  private readonly disk: IdentityDiskCache | undefined;
  private readonly log: Logger;
  private readonly now: () => number;
  private bundle: string;
  private stopped = false;

  constructor(private readonly opts: IdentityManagerOptions) {
    this.log = opts.logger ?? silentLogger;
    this.now = opts.now ?? Date.now;
    this.disk = opts.stateDir ? new IdentityDiskCache(opts.stateDir) : undefined;
    this.bundle = opts.initialTrustBundlePem ?? '';
  }

  /** Loads certificates kept on disk (serving can start before the controller answers) and schedules their renewal. */
  async start(): Promise<void> {
    if (!this.disk) return;
    const bundle = await this.disk.loadTrustBundle();
    if (bundle) this.bundle = bundle;
    for (const c of await this.disk.loadAll(this.now())) {
      this.entries.set(c.spiffeId, { cert: c });
      this.scheduleRenewal(c.spiffeId);
      this.log.info('loaded certificate from disk', { spiffeId: c.spiffeId, notAfter: c.notAfter.toISOString() });
    }
    if (this.entries.size > 0) this.emit([...this.entries.keys()], true);
  }

  stop(): void {
    this.stopped = true;
    for (const e of this.entries.values()) if (e.timer) clearTimeout(e.timer);
  }

  async get(spiffeId: string): Promise<WorkloadCertificate> {
    const e = this.entry(spiffeId);
    if (e.cert && e.cert.notAfter.getTime() > this.now()) return e.cert;
    const fetching = e.fetching ?? this.fetchWithRetry(spiffeId);
    const timeout = this.opts.getTimeoutMs ?? 15_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        fetching,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new IdentityUnavailableError(spiffeId, e.lastError ?? new Error(`no answer within ${timeout} ms`))), timeout);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The identities this node needs (service accounts with a pod here, from the config). Missing ones are
   * fetched now; ones no longer needed are dropped when they are not renewed.
   */
  setWanted(spiffeIds: Iterable<string>): void {
    const want = new Set(spiffeIds);
    for (const id of want) {
      const e = this.entry(id);
      if (!e.cert && !e.fetching) this.fetchWithRetry(id).catch(() => undefined);
    }
    for (const [id, e] of this.entries) {
      if (want.has(id) || e.fetching) continue;
      if (e.timer) clearTimeout(e.timer);
      this.entries.delete(id);
      void this.disk?.remove(id);
      this.log.info('dropped identity no longer needed on this node', { spiffeId: id });
    }
  }

  trustBundlePem(): string {
    return this.bundle;
  }

  /** replace the trust bundle (the config stream carries it too, e.g. during a root rotation) */
  setTrustBundle(pem: string): void {
    if (!pem || pem === this.bundle) return;
    this.bundle = pem;
    void this.disk?.saveTrustBundle(pem).catch((e: unknown) => this.log.warn('could not persist trust bundle', { err: e }));
    this.emit([], true);
  }

  onChange(listener: (change: IdentityChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** every certificate held now */
  certificates(): WorkloadCertificate[] {
    return [...this.entries.values()].flatMap((e) => (e.cert ? [e.cert] : []));
  }

  /** the soonest expiry over held certificates (for reports and metrics) */
  soonestExpiry(): Date | undefined {
    let min: Date | undefined;
    for (const c of this.certificates()) if (!min || c.notAfter < min) min = c.notAfter;
    return min;
  }

  private entry(id: string): Entry {
    let e = this.entries.get(id);
    if (!e) this.entries.set(id, (e = {}));
    return e;
  }

  /** one CSR round trip: a fresh key each time, so a rotation also rotates the key */
  private async fetchOnce(spiffeId: string): Promise<{ cert: WorkloadCertificate; bundle: string }> {
    const keys = await generateP256KeyPair();
    const csr = createSpiffeCsrPemNative(spiffeId, keys);
    const signed = await this.opts.signer.signCsr(csr);
    const cert = { spiffeId, certChainPem: signed.certChainPem, keyPem: keyObjectToPem(keys.privateKey), notBefore: signed.notBefore, notAfter: signed.notAfter };
    return { cert, bundle: signed.trustBundlePem };
  }

  private fetchWithRetry(spiffeId: string): Promise<WorkloadCertificate> {
    const e = this.entry(spiffeId);
    if (e.fetching) return e.fetching;
    const initial = this.opts.retryInitialMs ?? 500;
    const max = this.opts.retryMaxMs ?? 30_000;
    const p = (async () => {
      let delay = initial;
      for (let attempt = 1; ; attempt++) {
        if (this.stopped) throw new IdentityUnavailableError(spiffeId, new Error('identity manager stopped'));
        try {
          const { cert, bundle } = await this.fetchOnce(spiffeId);
          if (this.stopped) return cert;
          e.cert = cert;
          e.lastError = undefined;
          if (bundle) this.setTrustBundleQuiet(bundle);
          await this.disk?.save(cert).catch((err: unknown) => this.log.warn('could not persist certificate', { spiffeId, err }));
          this.log.info('obtained certificate', { spiffeId, notAfter: cert.notAfter.toISOString(), attempt });
          return cert;
        } catch (err) {
          e.lastError = err;
          // keep serving a still-valid certificate; retry until it has expired and beyond
          this.log.warn('certificate request failed; retrying', { spiffeId, attempt, retryInMs: delay, err });
          await new Promise((r) => setTimeout(r, delay * (0.8 + Math.random() * 0.4)).unref?.());
          delay = Math.min(delay * 2, max);
        }
      }
    })();
    e.fetching = p;
    p.then(
      () => {
        e.fetching = undefined;
        if (this.entries.get(spiffeId) !== e) return;
        this.scheduleRenewal(spiffeId);
        this.emit([spiffeId], this.bundleChanged);
      },
      () => {
        e.fetching = undefined;
      },
    );
    return p;
  }

  private setTrustBundleQuiet(pem: string): void {
    if (pem === this.bundle) return;
    this.bundle = pem;
    this.bundleChanged = true;
    void this.disk?.saveTrustBundle(pem).catch((e: unknown) => this.log.warn('could not persist trust bundle', { err: e }));
  }

  private scheduleRenewal(spiffeId: string): void {
    const e = this.entries.get(spiffeId);
    if (!e?.cert || this.stopped) return;
    if (e.timer) clearTimeout(e.timer);
    const { notBefore, notAfter } = e.cert;
    const at = notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) * (this.opts.rotateAt ?? 0.5);
    const delay = Math.max(0, at - this.now());
    e.timer = setTimeout(() => {
      e.timer = undefined;
      this.fetchWithRetry(spiffeId).catch(() => undefined);
    }, Math.min(delay, 2 ** 31 - 1));
    e.timer.unref?.();
  }

  /** Only what changed is said, so a renewal disturbs only that identity's connections. */
  private emit(spiffeIds: string[], trustBundle: boolean): void {
    if (trustBundle) this.bundleChanged = false;
    const change: IdentityChange = { spiffeIds, trustBundle };
    for (const fn of this.listeners) {
      try {
        fn(change);
      } catch (err) {
        this.log.error('identity listener failed', { err });
      }
    }
  }
}
