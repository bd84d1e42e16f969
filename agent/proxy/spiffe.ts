// SPIFFE identities on the tunnel: which identity a client asks for (carried in SNI), checking the
// identity a peer's certificate proves, and naming why a handshake failed.
import { createHash } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { TunnelPeerError } from './errors.js';

const SNI_SUFFIX = '.id.weft';

/**
 * SNI carrying the destination identity the client wants the server to present. SPIFFE IDs are URIs,
 * not host names, so the SNI is a hash; the server maps it back through its own local identities.
 */
export function sniFor(spiffeId: string): string {
  return createHash('sha256').update(spiffeId).digest('hex').slice(0, 40) + SNI_SUFFIX;
}

/** The URI SANs of a peer certificate that are SPIFFE IDs. */
export function spiffeIdsOf(cert: PeerCertificate | undefined): string[] {
  const san = cert?.subjectaltname;
  if (!san) return [];
  const out: string[] = [];
  for (const part of san.split(', ')) if (part.startsWith('URI:spiffe://')) out.push(part.slice(4));
  return out;
}

export function trustDomainOf(id: string): string {
  return id.slice('spiffe://'.length).split('/')[0] ?? '';
}

/** checkServerIdentity for the tunnel client: the server must prove exactly the identity we asked for. */
export function expectIdentity(expected: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const ids = spiffeIdsOf(cert);
    if (ids.length === 0) return new TunnelPeerError('no_spiffe_id', `tunnel peer presented a certificate without a SPIFFE ID; expected ${expected}`);
    if (!ids.includes(expected)) {
      return new TunnelPeerError('identity_mismatch', `tunnel peer presented ${ids.join(',')} but ${expected} was expected; is the destination pod on the node the config says?`);
    }
    return undefined;
  };
}

/** Names a TLS handshake failure for the metric label and the log line. */
export function handshakeReason(err: unknown): string {
  if (err instanceof TunnelPeerError) return err.reason;
  const code = String((err as { code?: unknown })?.code ?? '');
  const msg = String((err as Error)?.message ?? '');
  if (code === 'CERT_HAS_EXPIRED' || /certificate expired/i.test(msg)) return 'expired';
  if (code === 'CERT_NOT_YET_VALID') return 'not_yet_valid';
  if (
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ||
    code === 'SELF_SIGNED_CERT_IN_CHAIN' ||
    code === 'DEPTH_ZERO_SELF_SIGNED_CERT' ||
    code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' ||
    code === 'CERT_SIGNATURE_FAILURE' ||
    /unknown ca|unable to get local issuer|self.signed|bad certificate/i.test(msg)
  ) return 'untrusted_ca';
  if (/certificate required|peer did not return a certificate/i.test(msg)) return 'no_client_certificate';
  if (/no suitable signature|no shared cipher|unsupported protocol|protocol version/i.test(msg)) return 'tls_negotiation';
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH') return 'network';
  return code ? code.toLowerCase() : 'other';
}
