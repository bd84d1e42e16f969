// CSR handling: the controller's signing path (CsrAuthorizer.sign: parse, key algorithm, self-signature,
// SANs, trust domain, placement, then the real CA signs) fed CSRs built right and wrong (other service
// account, other trust domain, P-384, RSA, extra SANs, no SPIFFE URI), their DER mutated, their PEM text
// mutated, and arbitrary text. Oracles: a refusal is a CsrRefusedError with one of the documented codes
// (never another error); a certificate is issued only to node-1 for spiffe://cluster.local/ns/default/sa/web,
// for exactly that URI and for the CSR's own key; every CSR is answered within the deadline.
import fc from 'fast-check';
import { webcrypto } from 'node:crypto';
import { createSpiffeCsrPemNative, generateP256KeyPair } from '../../../common/csr.js';
import { createSpiffeCsrPem, generateEcKeyPair, uriSans, x509, type CryptoKeyPair } from '../../../common/x509.js';
import { CsrAuthorizer } from '../../../controller/ca/csr-authorizer.js';
import { CSR_REFUSAL, CsrRefusedError } from '../../../controller/ca/errors.js';
import { createTestCa } from '../../../controller/ca/test-ca.js';
import { mutatedBytes, hostileString } from '../mutate.js';
import { OracleViolation, withDeadline, type FuzzContext, type FuzzTarget } from '../target.js';

type Input = { node: string; pem: string };

const ALLOWED = 'spiffe://cluster.local/ns/default/sa/web';
const CODES = new Set<string>(Object.values(CSR_REFUSAL));

function toPem(der: Buffer, label = 'CERTIFICATE REQUEST'): string {
  return `-----BEGIN ${label}-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

async function seedCsrs(): Promise<string[]> {
  const p256 = await generateEcKeyPair('P-256');
  const p384 = await generateEcKeyPair('P-384');
  const rsa = (await webcrypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const withNames = async (keys: CryptoKeyPair, names: x509.JsonGeneralNames, alg: object = { name: 'ECDSA', hash: 'SHA-256' }) =>
    (await x509.Pkcs10CertificateRequestGenerator.create({ name: 'O=weft', keys, signingAlgorithm: alg as never, extensions: [new x509.SubjectAlternativeNameExtension(names)] })).toString('pem');
  return [
    await createSpiffeCsrPem(ALLOWED, p256),
    createSpiffeCsrPemNative(ALLOWED, await generateP256KeyPair()),
    await createSpiffeCsrPem('spiffe://cluster.local/ns/default/sa/db', p256),
    await createSpiffeCsrPem('spiffe://other.domain/ns/default/sa/web', p256),
    await createSpiffeCsrPem(ALLOWED, p384),
    await withNames(p256, [{ type: 'url', value: ALLOWED }, { type: 'dns', value: 'web.default.svc' }]),
    await withNames(p256, [{ type: 'url', value: ALLOWED }, { type: 'url', value: 'spiffe://cluster.local/ns/kube-system/sa/admin' }]),
    await withNames(p256, [{ type: 'url', value: 'https://web.default/' }]),
    await withNames(rsa, [{ type: 'url', value: ALLOWED }], { name: 'RSASSA-PKCS1-v1_5' }),
    (await x509.Pkcs10CertificateRequestGenerator.create({ name: 'O=weft', keys: p256, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as never })).toString('pem'),
  ];
}

const derOf = (pem: string) => Buffer.from(x509.PemConverter.decodeFirst(pem));

export const csrTarget: FuzzTarget = {
  name: 'csr',
  surface: 'controller/ca/csr-authorizer.ts (validateCsr, CsrAuthorizer.sign) and the CA it signs with',
  async setup(): Promise<FuzzContext<unknown>> {
    const { ca } = await createTestCa();
    const authorizer = new CsrAuthorizer(ca, { serviceAccountsOnNode: (n) => new Set(n === 'node-1' ? ['default/web'] : []) });
    const pems = await seedCsrs();
    const ders = pems.map(derOf);
    const texts = pems.map((p) => Buffer.from(p));
    const pem: fc.Arbitrary<string> = fc.oneof(
      { weight: 6, arbitrary: mutatedBytes(ders, 4).map((d) => toPem(d)) },
      { weight: 2, arbitrary: mutatedBytes(texts, 3).map((b) => b.toString('latin1')) },
      { weight: 1, arbitrary: fc.tuple(mutatedBytes(ders, 2), fc.constantFrom('CERTIFICATE', 'NEW CERTIFICATE REQUEST', 'PRIVATE KEY', '')).map(([d, l]) => toPem(d, l)) },
      { weight: 1, arbitrary: hostileString },
    );
    return {
      arbitrary: fc.record({ node: fc.constantFrom('node-1', 'node-1', 'node-2', ''), pem }) as fc.Arbitrary<unknown>,
      async check(raw) {
        const input = raw as Input;
        let signed;
        try {
          signed = await withDeadline(authorizer.sign(input.node, input.pem), 10_000, 'CSR signing');
        } catch (e) {
          if (e instanceof OracleViolation) throw e;
          if (!(e instanceof CsrRefusedError) || !CODES.has(e.code)) throw new OracleViolation('wrong', `refused with ${(e as Error)?.name}: ${(e as Error)?.message} (not a CsrRefusedError with a documented code)`, { cause: e });
          return;
        }
        if (input.node !== 'node-1' || signed.spiffeId !== ALLOWED) throw new OracleViolation('wrong', `signed ${signed.spiffeId} for node "${input.node}"`);
        const cert = new x509.X509Certificate(signed.certChainPem);
        const uris = uriSans(cert.extensions);
        if (uris.length !== 1 || uris[0] !== ALLOWED) throw new OracleViolation('wrong', `the certificate names ${uris.join(', ')}`);
        const csr = new x509.Pkcs10CertificateRequest(input.pem);
        if (Buffer.compare(Buffer.from(cert.publicKey.rawData), Buffer.from(csr.publicKey.rawData)) !== 0) throw new OracleViolation('wrong', 'the certificate is for another key than the CSR\'s');
      },
      show: (raw) => JSON.stringify(raw),
      close: async () => {},
    };
  },
};
