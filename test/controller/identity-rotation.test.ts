// Certificate rotation under live traffic: certificates that live 1.5 s are renewed at half life while a
// client keeps opening new mTLS connections (each with the certificate of the moment) and one long-lived
// connection keeps exchanging messages. Zero failed requests, several rotations, and CSR retries with
// backoff when the signer fails for a while.
import t from 'tap';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';

import { IdentityManager, type CsrSigner } from '../../agent/identity/manager.js';
import { CertificateAuthority } from '../../controller/ca/authority.js';
import { CsrAuthorizer } from '../../controller/ca/csr-authorizer.js';

const CLIENT = 'spiffe://cluster.local/ns/shop/sa/web';
const SERVER = 'spiffe://cluster.local/ns/shop/sa/db';

async function setup(ttlMs: number): Promise<{ ca: CertificateAuthority; signer: CsrSigner & { calls: number; failUntil: number } }> {
  const ca = await CertificateAuthority.open({ trustDomain: 'cluster.local', leafTtlMs: ttlMs });
  const authz = new CsrAuthorizer(ca, { serviceAccountsOnNode: () => new Set(['shop/web', 'shop/db']) });
  const signer = {
    calls: 0,
    failUntil: 0,
    async signCsr(csrPem: string) {
      signer.calls++;
      if (Date.now() < signer.failUntil) throw new Error('controller unavailable (test)');
      return authz.sign('node-1', csrPem);
    },
  };
  return { ca, signer };
}

t.test('rotation at half life under live traffic drops nothing', async (t) => {
  const { signer } = await setup(1500);
  const id = new IdentityManager({ signer, retryInitialMs: 50, retryMaxMs: 200 });
  t.teardown(() => id.stop());
  let rotations = 0;
  id.onChange(() => rotations++);

  // the server builds a fresh TLS context per connection from the current certificate (as the proxy does)
  const contextFor = async () => {
    const c = await id.get(SERVER);
    return tls.createSecureContext({ key: c.keyPem, cert: c.certChainPem, ca: id.trustBundlePem() });
  };
  let ctx = await contextFor();
  id.onChange(() => void contextFor().then((c) => (ctx = c)));
  const server = tls.createServer({ SNICallback: (_name, cb) => cb(null, ctx), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3', ...{ key: (await id.get(SERVER)).keyPem, cert: (await id.get(SERVER)).certChainPem, ca: id.trustBundlePem() } }, (s) => {
    s.on('data', (d: Buffer) => s.write(d));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;

  const connect = async (): Promise<tls.TLSSocket> => {
    const c = await id.get(CLIENT);
    return new Promise((resolve, reject) => {
      const s = tls.connect({ port, host: '127.0.0.1', servername: 'db.shop', key: c.keyPem, cert: c.certChainPem, ca: id.trustBundlePem(), checkServerIdentity: () => undefined }, () => resolve(s));
      s.once('error', reject);
    });
  };
  const echo = (s: tls.TLSSocket, msg: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('echo timeout')), 2000);
      s.once('data', (d: Buffer) => {
        clearTimeout(timer);
        d.toString() === msg ? resolve() : reject(new Error(`echo mismatch: ${d.toString()}`));
      });
      s.once('error', reject);
      s.write(msg);
    });

  const longLived = await connect();
  t.teardown(() => longLived.destroy());
  const serials = new Set<string>();
  let ok = 0;
  let failed = 0;
  const errors: string[] = [];
  const end = Date.now() + 3500;
  let i = 0;
  while (Date.now() < end) {
    i++;
    try {
      const s = await connect();
      serials.add(s.getCertificate() ? (s.getCertificate() as tls.PeerCertificate).serialNumber : '');
      await echo(s, `short-${i}`);
      s.destroy();
      await echo(longLived, `long-${i}`);
      ok++;
    } catch (e) {
      failed++;
      errors.push((e as Error).message);
    }
    await new Promise((r) => setTimeout(r, 15));
  }
  t.equal(failed, 0, `no failed request (${errors.slice(0, 3).join('; ')})`);
  t.ok(ok >= 5, `requests made: ${ok}`);
  t.ok(serials.size >= 2, `the client certificate rotated (${serials.size} distinct serials)`);
  t.ok(rotations >= 2, `rotations observed: ${rotations}`);
  t.equal(longLived.destroyed, false, 'the long-lived connection survived every rotation');
});

t.test('failed CSRs are retried with backoff; the still-valid certificate keeps serving', async (t) => {
  const { signer } = await setup(3000);
  const id = new IdentityManager({ signer, retryInitialMs: 40, retryMaxMs: 160 });
  t.teardown(() => id.stop());
  const first = await id.get(CLIENT);
  // the renewal (at ~1.5 s) fails until 2.5 s from now
  signer.failUntil = Date.now() + 2500;
  const callsBefore = signer.calls;
  await new Promise((r) => setTimeout(r, 2000));
  t.equal((await id.get(CLIENT)).certChainPem, first.certChainPem, 'the old, still valid certificate is served meanwhile');
  const deadline = Date.now() + 4000;
  while ((await id.get(CLIENT)).certChainPem === first.certChainPem && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.not((await id.get(CLIENT)).certChainPem, first.certChainPem, 'renewed once the signer is back');
  const attempts = signer.calls - callsBefore;
  t.ok(attempts >= 3 && attempts <= 25, `retried with backoff, not in a tight loop (${attempts} attempts)`);

  const refusing = new IdentityManager({ signer: { signCsr: () => Promise.reject(new Error('refused (test)')) }, retryInitialMs: 20, retryMaxMs: 40, getTimeoutMs: 200 });
  t.teardown(() => refusing.stop());
  await t.rejects(refusing.get(CLIENT), { code: 'WEFT_ERR_IDENTITY_UNAVAILABLE', message: /refused \(test\)/ });
});
