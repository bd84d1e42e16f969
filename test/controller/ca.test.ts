// The CA: root persistence, operator roots, leaves usable by node:tls, every CSR refusal, root rotation.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';

import { CertificateAuthority } from '../../controller/ca/authority.js';
import { CsrAuthorizer } from '../../controller/ca/csr-authorizer.js';
import { DirectoryRootStore } from '../../controller/ca/root-store.js';
import { createTestCa } from '../../controller/ca/test-ca.js';
import { createSpiffeCsrPem, ECDSA_SHA256, generateEcKeyPair, subtle, x509 } from '../../common/x509.js';
import type { CryptoKeyPair } from '../../common/x509.js';

const TD = 'cluster.local';
const WEB = `spiffe://${TD}/ns/default/sa/web`;

function tmp(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'weft-ca-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** one mutual-TLS round trip; resolves with the server's view of the client's URI SAN */
async function mtlsHandshake(server: { key: string; cert: string }, client: { key: string; cert: string }, ca: string): Promise<string> {
  const srv = tls.createServer({ key: server.key, cert: server.cert, ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (s) => {
    const peer = s.getPeerCertificate();
    s.end(String(peer.subjectaltname ?? ''));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const port = (srv.address() as AddressInfo).port;
    return await new Promise<string>((resolve, reject) => {
      const c = tls.connect({ port, host: '127.0.0.1', key: client.key, cert: client.cert, ca, checkServerIdentity: () => undefined });
      let data = '';
      c.on('data', (d: Buffer) => (data += d.toString()));
      c.on('end', () => resolve(data));
      c.on('error', reject);
    });
  } finally {
    srv.close();
  }
}


t.test('root is generated on first start, persisted, and reloaded', async (t) => {
  const dir = tmp(t);
  const a = await CertificateAuthority.open({ trustDomain: TD, store: new DirectoryRootStore(dir) });
  t.match(readFileSync(join(dir, 'root-key.pem'), 'utf8'), /BEGIN PRIVATE KEY/);
  const b = await CertificateAuthority.open({ trustDomain: TD, store: new DirectoryRootStore(dir) });
  t.equal(b.rootCertPem(), a.rootCertPem(), 'same root after restart');
  const root = new x509.X509Certificate(a.rootCertPem());
  t.equal((root.publicKey.algorithm as { namedCurve?: string }).namedCurve, 'P-256');
});

t.test('operator-supplied root is used; broken files are refused with WEFT_ERR_CA_ROOT', async (t) => {
  const donor = await createTestCa();
  const dir = tmp(t);
  const store = new DirectoryRootStore(dir);
  const saved = await CertificateAuthority.open({ trustDomain: TD, store });
  const material = { certPem: readFileSync(join(dir, 'root-cert.pem'), 'utf8'), keyPem: readFileSync(join(dir, 'root-key.pem'), 'utf8') };
  const ca = await CertificateAuthority.open({ trustDomain: TD, operatorRoot: material });
  t.equal(ca.rootCertPem(), saved.rootCertPem());
  await t.rejects(CertificateAuthority.open({ trustDomain: TD, operatorRoot: { certPem: 'nope', keyPem: material.keyPem } }), { code: 'WEFT_ERR_CA_ROOT' });
  const leaf = await donor.issueWorkloadCert(WEB);
  await t.rejects(CertificateAuthority.open({ trustDomain: TD, operatorRoot: { certPem: leaf.certChainPem, keyPem: leaf.keyPem } }), { code: 'WEFT_ERR_CA_ROOT', message: /not a CA/ });
  await t.rejects(CertificateAuthority.open({ trustDomain: TD, operatorRoot: { certPem: donor.rootCertPem, keyPem: material.keyPem } }), { code: 'WEFT_ERR_CA_ROOT', message: /does not belong/ });
  writeFileSync(join(dir, 'root-key.pem'), '');
  rmSync(join(dir, 'root-key.pem'));
  await t.rejects(CertificateAuthority.open({ trustDomain: TD, store }), { code: 'WEFT_ERR_CA_ROOT', message: /only one of/ });
});

t.test('test CA leaves work for mutual TLS with node:tls and carry the SPIFFE URI', async (t) => {
  const ca = await createTestCa();
  const a = await ca.issueWorkloadCert(WEB);
  const b = await ca.issueWorkloadCert(ca.spiffeId('shop', 'db'));
  const seen = await mtlsHandshake({ key: b.keyPem, cert: b.certChainPem }, { key: a.keyPem, cert: a.certChainPem }, ca.trustBundlePem());
  t.equal(seen, `URI:${WEB}`);
  t.ok(a.notAfter.getTime() - a.notBefore.getTime() <= 24 * 3600 * 1000 + 60_000, 'default lifetime 24 h');
  const other = await createTestCa();
  const foreign = await other.issueWorkloadCert(WEB);
  // TLS 1.3: the client may see an alert or just a closed stream; either way the server never answers.
  const res = await mtlsHandshake({ key: b.keyPem, cert: b.certChainPem }, { key: foreign.keyPem, cert: foreign.certChainPem }, ca.trustBundlePem()).catch(() => 'rejected');
  t.not(res, `URI:${WEB}`, 'a leaf of another CA is rejected');
});

async function csrWith(keys: CryptoKeyPair, names: x509.JsonGeneralNames, alg: Algorithm | EcdsaParams = ECDSA_SHA256): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'O=weft', keys, signingAlgorithm: alg, extensions: [new x509.SubjectAlternativeNameExtension(names)] });
  return csr.toString('pem');
}
type Algorithm = { name: string };
type EcdsaParams = { name: string; hash: string };

t.test('CSR signing: authorized request is signed; every refusal has its own code', async (t) => {
  const { ca } = await createTestCa();
  const placement = { serviceAccountsOnNode: (node: string) => new Set(node === 'node-1' ? ['default/web'] : ['shop/db']) };
  const authz = new CsrAuthorizer(ca, placement);
  const keys = await generateEcKeyPair('P-256');

  const ok = await authz.sign('node-1', await createSpiffeCsrPem(WEB, keys));
  t.equal(ok.spiffeId, WEB);
  const leaf = new x509.X509Certificate(ok.certChainPem);
  t.ok(await leaf.verify({ publicKey: new x509.X509Certificate(ca.rootCertPem()).publicKey, signatureOnly: true }), 'chains to the root');
  t.equal(leaf.publicKey.toString('hex'), (await x509.PublicKey.create(keys.publicKey)).toString('hex'), 'for the CSR key');
  const p384 = await authz.sign('node-1', await createSpiffeCsrPem(WEB, await generateEcKeyPair('P-384')));
  t.equal(p384.spiffeId, WEB, 'P-384 is accepted');

  await t.rejects(authz.sign('node-2', await createSpiffeCsrPem(WEB, keys)), { code: 'WEFT_ERR_CSR_NOT_ON_NODE', message: /node-2.*default\/web has no pod/ });
  const rsa = (await subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  await t.rejects(authz.sign('node-1', await csrWith(rsa, [{ type: 'url', value: WEB }], { name: 'RSASSA-PKCS1-v1_5' })), { code: 'WEFT_ERR_CSR_KEY_ALGORITHM', message: /RSASSA/ });
  const p521 = (await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-521' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  await t.rejects(authz.sign('node-1', await csrWith(p521, [{ type: 'url', value: WEB }], { name: 'ECDSA', hash: 'SHA-512' })), { code: 'WEFT_ERR_CSR_KEY_ALGORITHM', message: /P-521/ });
  await t.rejects(authz.sign('node-1', await csrWith(keys, [{ type: 'url', value: WEB }, { type: 'url', value: `spiffe://${TD}/ns/shop/sa/db` }])), { code: 'WEFT_ERR_CSR_URI_COUNT' });
  await t.rejects(authz.sign('node-1', await csrWith(keys, [{ type: 'url', value: WEB }, { type: 'dns', value: 'web.default.svc' }])), { code: 'WEFT_ERR_CSR_URI_COUNT' });
  await t.rejects(authz.sign('node-1', await csrWith(keys, [{ type: 'dns', value: 'web.default.svc' }])), { code: 'WEFT_ERR_CSR_URI_COUNT' });
  await t.rejects(authz.sign('node-1', await createSpiffeCsrPem('spiffe://cluster.local/web', keys)), { code: 'WEFT_ERR_CSR_NOT_SPIFFE' });
  await t.rejects(authz.sign('node-1', await createSpiffeCsrPem('https://example.com/ns/default/sa/web', keys)), { code: 'WEFT_ERR_CSR_NOT_SPIFFE' });
  await t.rejects(authz.sign('node-1', await createSpiffeCsrPem('spiffe://evil.example/ns/default/sa/web', keys)), { code: 'WEFT_ERR_CSR_TRUST_DOMAIN', message: /evil\.example/ });
  await t.rejects(authz.sign('node-1', 'not a csr'), { code: 'WEFT_ERR_CSR_INVALID' });
  // A CSR whose key was swapped after signing: the self-signature no longer verifies.
  const good = new x509.Pkcs10CertificateRequest(await createSpiffeCsrPem(WEB, keys));
  const other = new x509.Pkcs10CertificateRequest(await createSpiffeCsrPem(WEB, await generateEcKeyPair('P-256')));
  const der = new Uint8Array(good.rawData);
  const goodKey = new Uint8Array(good.publicKey.rawData);
  const otherKey = new Uint8Array(other.publicKey.rawData);
  const at = Buffer.from(der).indexOf(Buffer.from(goodKey));
  t.ok(at > 0, 'found the key in the CSR');
  der.set(otherKey, at);
  const tampered = x509.PemConverter.encode(der.buffer, 'CERTIFICATE REQUEST');
  await t.rejects(authz.sign('node-1', tampered), { code: 'WEFT_ERR_CSR_INVALID', message: /signature/ });
});

t.test('root rotation: bundle carries old and new until old leaves expire; old leaves keep working', async (t) => {
  let now = Date.now();
  const dir = tmp(t);
  const ca = await CertificateAuthority.open({ trustDomain: TD, store: new DirectoryRootStore(dir), leafTtlMs: 3600_000, now: () => now });
  const oldRoot = ca.rootCertPem();
  const oldLeaf = await ca.issueWorkloadCert(WEB);
  let changes = 0;
  ca.onChange(() => changes++);
  await ca.rotateRoot();
  t.not(ca.rootCertPem(), oldRoot);
  t.equal(changes, 1);
  const bundle = ca.trustBundlePem();
  t.ok(bundle.includes(oldRoot) && bundle.includes(ca.rootCertPem()), 'bundle holds both roots');
  const newLeaf = await ca.issueWorkloadCert(`spiffe://${TD}/ns/shop/sa/db`);
  t.equal(await mtlsHandshake({ key: newLeaf.keyPem, cert: newLeaf.certChainPem }, { key: oldLeaf.keyPem, cert: oldLeaf.certChainPem }, bundle), `URI:${WEB}`, 'old-root leaf accepted by a new-root peer');
  const reopened = await CertificateAuthority.open({ trustDomain: TD, store: new DirectoryRootStore(dir), leafTtlMs: 3600_000, now: () => now });
  t.equal(reopened.trustBundlePem(), bundle, 'rotation state persisted');
  now += 3600_000 + 1000;
  t.equal(ca.trustBundlePem(), ca.rootCertPem(), 'old root retired once its leaves expired');
});
