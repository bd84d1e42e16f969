// X.509 plumbing shared by the controller's CA and the agent's identity manager: @peculiar/x509 over
// Node's WebCrypto, ECDSA keys, PEM conversion and SPIFFE ID parsing. @peculiar/x509 needs
// reflect-metadata loaded before it (tsyringe), hence the import order here; import x509 through this
// module only.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

// the library's typings name the DOM's Crypto; Node's WebCrypto is that implementation
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export const subtle = webcrypto.subtle;

export type EcCurve = 'P-256' | 'P-384';

export const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

export async function generateEcKeyPair(curve: EcCurve = 'P-256'): Promise<CryptoKeyPair> {
  return (await subtle.generateKey({ name: 'ECDSA', namedCurve: curve }, true, ['sign', 'verify'])) as CryptoKeyPair;
}

/** PKCS#8 PEM ("PRIVATE KEY"), which node:tls accepts as `key`. */
export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  const der = await subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n';
}

export async function privateKeyFromPem(pem: string, curve: EcCurve = 'P-256'): Promise<CryptoKey> {
  const der = x509.PemConverter.decodeFirst(pem);
  return subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: curve }, true, ['sign']);
}

/** The curve of an EC private key PEM, read through node:crypto (which parses any PKCS#8 / SEC1 key). */
export async function curveOfPrivateKeyPem(pem: string): Promise<EcCurve | undefined> {
  const { createPrivateKey } = await import('node:crypto');
  const k = createPrivateKey(pem);
  if (k.asymmetricKeyType !== 'ec') return undefined;
  const c = k.asymmetricKeyDetails?.namedCurve;
  if (c === 'prime256v1' || c === 'P-256') return 'P-256';
  if (c === 'secp384r1' || c === 'P-384') return 'P-384';
  return undefined;
}

/** Normalised PEM of one certificate, newline-terminated, so bundles concatenate cleanly. */
export function certToPem(cert: x509.X509Certificate): string {
  return cert.toString('pem').trim() + '\n';
}

/** Every certificate in a PEM bundle. */
export function parseCertBundle(pem: string): x509.X509Certificate[] {
  return x509.PemConverter.decodeWithHeaders(pem)
    .filter((s) => s.type === 'CERTIFICATE')
    .map((s) => new x509.X509Certificate(s.rawData));
}

const SAN_OID = '2.5.29.17';

/** URI SANs of a certificate or CSR extension list. */
export function uriSans(extensions: readonly x509.Extension[]): string[] {
  const out: string[] = [];
  for (const ext of extensions) {
    if (ext.type !== SAN_OID) continue;
    const san = ext instanceof x509.SubjectAlternativeNameExtension ? ext : new x509.SubjectAlternativeNameExtension(ext.rawData);
    for (const n of san.names.items) if (n.type === 'url') out.push(n.value);
  }
  return out;
}

export interface ParsedSpiffeId {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

const SPIFFE_RE = /^spiffe:\/\/([a-z0-9._-]+)\/ns\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)\/sa\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/;

/** Parses `spiffe://<td>/ns/<ns>/sa/<sa>`; undefined for anything else. */
export function parseSpiffeId(id: string): ParsedSpiffeId | undefined {
  const m = SPIFFE_RE.exec(id);
  if (!m) return undefined;
  return { trustDomain: m[1]!, namespace: m[2]!, serviceAccount: m[4]! };
}

/** A PKCS#10 CSR for exactly one SPIFFE URI, signed with `keys` (ECDSA SHA-256). */
export async function createSpiffeCsrPem(spiffeIdUri: string, keys: CryptoKeyPair): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'O=weft',
    keys,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeIdUri }])],
  });
  return csr.toString('pem').trim() + '\n';
}
