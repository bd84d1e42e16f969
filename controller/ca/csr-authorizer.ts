// Decides whether an agent may have the certificate its CSR asks for, then has the CA sign it. An agent
// may only obtain identities of service accounts that have a pod on its own node (as the object store
// sees it), with an ECDSA P-256/P-384 key, for exactly one SPIFFE URI of our trust domain. Every refusal
// carries its own code (errors.ts) and says what was asked and what is allowed.
import { parseSpiffeId, uriSans, x509 } from '../../common/x509.js';
import type { Logger } from '../../common/log.js';
import { silentLogger } from '../../common/log.js';
import type { CertificateAuthority } from './authority.js';
import { CSR_REFUSAL, CsrRefusedError } from './errors.js';

/** What the authorizer needs to know about placement: the service accounts ("ns/sa") with a pod on a node. */
export interface ServiceAccountPlacement {
  serviceAccountsOnNode(node: string): ReadonlySet<string>;
}

export interface SignedCertificate {
  spiffeId: string;
  certChainPem: string;
  trustBundlePem: string;
  notBefore: Date;
  notAfter: Date;
}

const ALLOWED_CURVES = new Set(['P-256', 'P-384']);
const SAN_OID = '2.5.29.17';

export interface ValidCsr {
  spiffeId: string;
  namespace: string;
  serviceAccount: string;
  publicKey: x509.PublicKey;
}

/** The checks that depend only on the CSR and the trust domain. */
export async function validateCsr(csrPem: string, trustDomain: string): Promise<ValidCsr> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (e) {
    throw new CsrRefusedError(CSR_REFUSAL.invalid, `the CSR is not a PEM PKCS#10 certificate request (${(e as Error).message})`);
  }
  let alg: { name?: string; namedCurve?: string; modulusLength?: number };
  try {
    // the key's parameters are decoded only here: a CSR that parsed may still carry a key whose algorithm
    // parameters are not ASN.1 the library understands
    alg = csr.publicKey.algorithm as typeof alg;
  } catch (e) {
    throw new CsrRefusedError(CSR_REFUSAL.keyAlgorithm, `the CSR's key algorithm cannot be read (${(e as Error).message}); only ECDSA P-256 or P-384 keys are signed`);
  }
  if (alg.name !== 'ECDSA' || !ALLOWED_CURVES.has(alg.namedCurve ?? '')) {
    const got = alg.name === 'ECDSA' ? `ECDSA ${alg.namedCurve ?? 'unknown curve'}` : (alg.name ?? 'unknown');
    throw new CsrRefusedError(CSR_REFUSAL.keyAlgorithm, `the CSR's key is ${got}; only ECDSA P-256 or P-384 keys are signed`, { keyAlgorithm: got });
  }
  let signatureOk = false;
  try {
    signatureOk = await csr.verify();
  } catch {
    signatureOk = false;
  }
  if (!signatureOk) throw new CsrRefusedError(CSR_REFUSAL.invalid, 'the CSR signature does not verify with its own key; the CSR was altered or built wrongly');

  const sanExts = csr.extensions.filter((e) => e.type === SAN_OID);
  const uris = uriSans(sanExts);
  let otherNames = 0;
  for (const ext of sanExts) {
    const san = ext instanceof x509.SubjectAlternativeNameExtension ? ext : new x509.SubjectAlternativeNameExtension(ext.rawData);
    otherNames += san.names.items.filter((n) => n.type !== 'url').length;
  }
  if (uris.length !== 1 || otherNames > 0) {
    throw new CsrRefusedError(
      CSR_REFUSAL.uriCount,
      `the CSR asks for ${uris.length} URI SAN(s) and ${otherNames} other SAN(s); exactly one SPIFFE URI and nothing else is signed`,
      { uris },
    );
  }
  const uri = uris[0]!;
  const id = parseSpiffeId(uri);
  if (!id) throw new CsrRefusedError(CSR_REFUSAL.notSpiffe, `the CSR's URI "${uri}" is not spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`, { uri });
  if (id.trustDomain !== trustDomain) {
    throw new CsrRefusedError(CSR_REFUSAL.trustDomain, `the CSR asks for "${uri}" in trust domain "${id.trustDomain}"; this CA signs only for "${trustDomain}"`, { uri });
  }
  return { spiffeId: uri, namespace: id.namespace, serviceAccount: id.serviceAccount, publicKey: csr.publicKey };
}

export class CsrAuthorizer {
  private readonly log: Logger;

  constructor(
    private readonly ca: CertificateAuthority,
    private readonly placement: ServiceAccountPlacement,
    logger?: Logger,
  ) {
    this.log = logger ?? silentLogger;
  }

  /** Validates, authorizes for `node` and signs; throws CsrRefusedError with the reason. */
  async sign(node: string, csrPem: string): Promise<SignedCertificate> {
    try {
      const v = await validateCsr(csrPem, this.ca.trustDomain);
      const sas = this.placement.serviceAccountsOnNode(node);
      if (!sas.has(`${v.namespace}/${v.serviceAccount}`)) {
        throw new CsrRefusedError(
          CSR_REFUSAL.notOnNode,
          `node "${node}" asked for "${v.spiffeId}" but service account ${v.namespace}/${v.serviceAccount} has no pod on that node`,
          { node, spiffeId: v.spiffeId },
        );
      }
      const cert = await this.ca.issue({ publicKey: v.publicKey, uris: [v.spiffeId] });
      this.log.info('signed workload certificate', { node, spiffeId: v.spiffeId, notAfter: cert.notAfter.toISOString() });
      return { spiffeId: v.spiffeId, certChainPem: this.ca.chainPem(cert), trustBundlePem: this.ca.trustBundlePem(), notBefore: cert.notBefore, notAfter: cert.notAfter };
    } catch (e) {
      if (e instanceof CsrRefusedError) this.log.warn('refused CSR', { node, code: e.code, reason: e.message });
      throw e;
    }
  }
}
