// The agent's dependency-free CSR builder must produce what the controller's CA accepts: parsed and
// signature-verified by @peculiar/x509 (validateCsr), exactly one SPIFFE URI SAN, subject O=weft, and the
// public key of the key pair the agent keeps.
import t from 'tap';
import { createPublicKey } from 'node:crypto';
import { createSpiffeCsrPemNative, generateP256KeyPair, keyObjectToPem } from '../../common/csr.js';
import { validateCsr } from '../../controller/ca/csr-authorizer.js';
import { subtle, x509 } from '../../common/x509.js';

t.test('native CSR is accepted and verified by the controller CA checks', async (t) => {
  const keys = await generateP256KeyPair();
  // a long URI pushes lengths past 127 bytes, exercising long-form DER lengths
  const uri = `spiffe://cluster.local/ns/shop/sa/${'a'.repeat(150)}`;
  const pem = createSpiffeCsrPemNative(uri, keys);
  t.match(pem, /^-----BEGIN CERTIFICATE REQUEST-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE REQUEST-----\n$/);
  const valid = await validateCsr(pem, 'cluster.local');
  t.equal(valid.spiffeId, uri);
  t.equal(valid.namespace, 'shop');
  const csr = new x509.Pkcs10CertificateRequest(pem);
  t.equal(csr.subject, 'O=weft');
  t.equal(await csr.verify(), true);
  const spki = Buffer.from(await subtle.exportKey('spki', await csr.publicKey.export()));
  t.same(spki, keys.publicKey.export({ type: 'spki', format: 'der' }));
  // the PEM key the agent serves with belongs to the same pair
  const fromPem = createPublicKey(keyObjectToPem(keys.privateKey)).export({ type: 'spki', format: 'der' });
  t.same(fromPem, spki);
});

t.test('a CSR altered after signing is refused', async (t) => {
  const keys = await generateP256KeyPair();
  const pem = createSpiffeCsrPemNative('spiffe://cluster.local/ns/shop/sa/web', keys);
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\n/g, ''), 'base64');
  const i = der.indexOf(Buffer.from('shop'));
  der.write('shoq', i);
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  await t.rejects(validateCsr(`-----BEGIN CERTIFICATE REQUEST-----\n${b64}-----END CERTIFICATE REQUEST-----\n`, 'cluster.local'), /does not verify/);
});
