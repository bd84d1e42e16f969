// A SPIFFE CSR (PKCS#10, ECDSA P-256 / SHA-256, subject O=weft, one URI SAN) built with node:crypto alone.
// The agent issues CSRs but never needs the rest of X.509: @peculiar/x509 (+ reflect-metadata) costs
// ~11 MB of agent RSS just by being loaded, so the agent uses this small DER encoder instead. The
// controller still parses and verifies what it receives with @peculiar/x509 (common/x509.ts).
import { generateKeyPair, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface EcKeyObjects {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

export async function generateP256KeyPair(): Promise<EcKeyObjects> {
  return generateKeyPairAsync('ec', { namedCurve: 'P-256' });
}

/** PKCS#8 PEM ("PRIVATE KEY"), which node:tls accepts as `key`. */
export function keyObjectToPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

const SEQUENCE = 0x30;
const SET = 0x31;
const OID_ORGANIZATION = '2.5.4.10';
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';
const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

/** PEM of a CSR for `spiffeIdUri`, signed with `keys.privateKey` (ECDSA, SHA-256). */
export function createSpiffeCsrPemNative(spiffeIdUri: string, keys: EcKeyObjects): string {
  const subject = tlv(SEQUENCE, tlv(SET, tlv(SEQUENCE, oid(OID_ORGANIZATION), tlv(0x0c, Buffer.from('weft', 'utf8')))));
  const spki = keys.publicKey.export({ type: 'spki', format: 'der' });
  // GeneralNames { uniformResourceIdentifier [6] IMPLICIT IA5String }
  const san = tlv(SEQUENCE, tlv(0x86, Buffer.from(spiffeIdUri, 'ascii')));
  const extensions = tlv(SEQUENCE, tlv(SEQUENCE, oid(OID_SUBJECT_ALT_NAME), tlv(0x04, san)));
  const attributes = tlv(0xa0, tlv(SEQUENCE, oid(OID_EXTENSION_REQUEST), tlv(SET, extensions)));
  const info = tlv(SEQUENCE, tlv(0x02, Buffer.from([0])), subject, spki, attributes);
  const signature = sign('sha256', info, { key: keys.privateKey, dsaEncoding: 'der' });
  const der = tlv(SEQUENCE, info, tlv(SEQUENCE, oid(OID_ECDSA_WITH_SHA256)), tlv(0x03, Buffer.from([0]), signature));
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}-----END CERTIFICATE REQUEST-----\n`;
}
