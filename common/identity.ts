// What the proxy needs from the identity manager (agent/identity): a certificate per local service
// account, and the trust bundle to verify peers with. Tests pass a fake backed by a local CA.

export interface WorkloadCertificate {
  spiffeId: string;
  /** leaf first, then intermediates, PEM */
  certChainPem: string;
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
}

/** What changed: the identities whose certificate is new, and whether the trust bundle is. */
export interface IdentityChange {
  spiffeIds: readonly string[];
  trustBundle: boolean;
}

export interface CertificateProvider {
  /** the current certificate for a SPIFFE ID of a service account with a pod on this node */
  get(spiffeId: string): Promise<WorkloadCertificate>;
  /** PEM of every CA certificate peers may chain to (old and new root during a rotation) */
  trustBundlePem(): string;
  /** called after certificates or the trust bundle changed, saying which; returns an unsubscribe function */
  onChange(listener: (change: IdentityChange) => void): () => void;
}
