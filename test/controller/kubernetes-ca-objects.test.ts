// The controller's Kubernetes objects for its CA, through the real client library against a fake API server:
// the trust bundle ConfigMap weft-system/weft-trust-bundle (created, kept up to date, replaced after a root
// rotation) and the first creation of the CA Secret weft-ca-root racing another replica (409: the winner's
// root is used, never overwritten).
import t from 'tap';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';

import { silentLogger } from '../../common/log.js';
import { CertificateAuthority } from '../../controller/ca/authority.js';
import { KubernetesSecretRootStore } from '../../controller/ca/kubernetes-secret-store.js';
import { KubernetesTrustBundlePublisher, TRUST_BUNDLE_KEY } from '../../controller/ca/kubernetes-trust-bundle.js';
import { makeEnv, runController, until } from './harness.js';

interface Obj {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  data?: Record<string, string>;
}

/** namespaced Secrets and ConfigMaps with the API server's create/replace semantics (409 on conflicts) */
class FakeObjectApi {
  readonly objects = new Map<string, Obj>();
  readonly log: string[] = [];
  /** runs before a POST is applied (simulates another replica winning the race) */
  beforeCreate: ((key: string) => void) | undefined;
  /** status codes to answer the next requests of a method with, instead of serving them */
  failNext: Record<string, number[]> = {};
  private rv = 1;
  private readonly server = createServer((req, res) => this.handle(req, res));

  async listen(): Promise<KubeConfig> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`, skipTLSVerify: true }],
      users: [{ name: 'ctl', token: 'controller-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'ctl' }],
      currentContext: 'fake',
    });
    return kc;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  put(key: string, obj: Obj): void {
    this.objects.set(key, { ...obj, metadata: { ...obj.metadata, resourceVersion: String(this.rv++) } });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const status = (code: number, reason: string) => json(code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason, code, message: reason });
      const m = /^\/api\/v1\/namespaces\/([^/]+)\/(secrets|configmaps)(?:\/([^/?]+))?/.exec(req.url ?? '');
      if (!m) return status(404, 'NotFound');
      const method = req.method ?? 'GET';
      this.log.push(`${method} ${m[2]}${m[3] ? '/' + m[3] : ''}`);
      const fail = this.failNext[method]?.shift();
      if (fail) return status(fail, 'Injected');
      const body = text ? (JSON.parse(text) as Obj) : undefined;
      const key = `${m[1]}/${m[2]}/${m[3] ?? body?.metadata.name}`;
      const cur = this.objects.get(key);
      if (method === 'GET') return cur ? json(200, cur) : status(404, 'NotFound');
      if (method === 'POST') {
        this.beforeCreate?.(key);
        if (this.objects.has(key)) return status(409, 'AlreadyExists');
        this.put(key, body!);
        return json(201, this.objects.get(key));
      }
      if (method === 'PUT') {
        if (!cur) return status(404, 'NotFound');
        const rv = body!.metadata.resourceVersion;
        if (rv && rv !== cur.metadata.resourceVersion) return status(409, 'Conflict');
        this.put(key, body!);
        return json(200, this.objects.get(key));
      }
      status(405, 'MethodNotAllowed');
    });
  }
}

const CM = 'weft-system/configmaps/weft-trust-bundle';
const SECRET = 'weft-system/secrets/weft-ca-root';
const bundleIn = (api: FakeObjectApi) => api.objects.get(CM)?.data?.[TRUST_BUNDLE_KEY];

async function fakeApi(t: { teardown(fn: () => Promise<void>): void }): Promise<{ api: FakeObjectApi; core: CoreV1Api }> {
  const api = new FakeObjectApi();
  const kc = await api.listen();
  t.teardown(() => api.close());
  return { api, core: kc.makeApiClient(CoreV1Api) };
}

t.test('the controller publishes its trust bundle in the ConfigMap and replaces it after a root rotation', async (t) => {
  const { api, core } = await fakeApi(t);
  const env = makeEnv(t);
  const c = await runController(env, {
    rootStore: new KubernetesSecretRootStore(core, 'weft-system'),
    trustBundlePublisher: new KubernetesTrustBundlePublisher({ api: core, namespace: 'weft-system', logger: silentLogger, retryMs: 20 }),
  });
  t.teardown(() => c.close());
  t.ok(api.objects.has(SECRET), 'the CA root is kept in the Secret');
  t.equal(bundleIn(api), c.ca.trustBundlePem(), 'the ConfigMap holds the trust bundle at start');
  t.notMatch(bundleIn(api)!, /PRIVATE KEY/, 'and no key');
  const first = c.ca.rootCertPem();

  await c.ca.rotateRoot();
  await until(() => bundleIn(api) === c.ca.trustBundlePem(), 5000, 'ConfigMap updated after rotation');
  t.ok(bundleIn(api)!.startsWith(c.ca.rootCertPem()) && bundleIn(api)!.includes(first), 'new root first, previous root still trusted');
  t.ok(api.log.includes('PUT configmaps/weft-trust-bundle'), 'replaced, not recreated');
});

t.test('a stale ConfigMap is updated, a conflicting write retried, and a failed write retried later', async (t) => {
  const { api, core } = await fakeApi(t);
  api.put(CM, { metadata: { name: 'weft-trust-bundle', namespace: 'weft-system' }, data: { [TRUST_BUNDLE_KEY]: 'stale' } });
  const pub = new KubernetesTrustBundlePublisher({ api: core, namespace: 'weft-system', logger: silentLogger, retryMs: 20 });
  t.teardown(() => pub.close());
  api.failNext.PUT = [409];
  await pub.publish('bundle-1');
  t.equal(bundleIn(api), 'bundle-1', 'a 409 (another replica wrote meanwhile) is re-read and retried');

  api.failNext.PUT = [500, 500];
  await pub.publish('bundle-2');
  t.equal(bundleIn(api), 'bundle-1', 'the failed write left the old bundle');
  await until(() => bundleIn(api) === 'bundle-2', 5000, 'retried after the API server recovered');

  api.objects.delete(CM);
  api.beforeCreate = (key) => {
    if (key === CM) api.put(CM, { metadata: { name: 'weft-trust-bundle', namespace: 'weft-system' }, data: { [TRUST_BUNDLE_KEY]: 'other' } });
  };
  await pub.publish('bundle-3');
  t.equal(bundleIn(api), 'bundle-3', 'created concurrently by another replica (409 on create): replaced');
});

t.test('first creation of the CA Secret racing another replica uses the winner’s root', async (t) => {
  const { api, core } = await fakeApi(t);
  // the other replica's root (certificate and key), captured from a CA that generated one
  let saved: { certPem: string; keyPem: string } | undefined;
  await CertificateAuthority.open({ trustDomain: 'cluster.local', store: { describe: () => 'capture', load: async () => undefined, save: async (s) => void (saved = s.current) } });
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  api.beforeCreate = (key) => {
    if (key !== SECRET) return;
    api.beforeCreate = undefined;
    api.put(SECRET, { metadata: { name: 'weft-ca-root', namespace: 'weft-system' }, data: { 'root-cert.pem': b64(saved!.certPem), 'root-key.pem': b64(saved!.keyPem), 'previous-roots.json': b64('[]') } });
  };
  const ca = await CertificateAuthority.open({ trustDomain: 'cluster.local', store: new KubernetesSecretRootStore(core, 'weft-system') });
  t.equal(ca.rootCertPem(), saved!.certPem, 'the CA signs with the root the other replica created');
  t.equal(Buffer.from(api.objects.get(SECRET)!.data!['root-cert.pem']!, 'base64').toString(), saved!.certPem, 'the Secret was not overwritten');
  t.notOk(api.log.includes('PUT secrets/weft-ca-root'), 'no replace on first start');
  const leaf = await ca.issueWorkloadCert('spiffe://cluster.local/ns/a/sa/b');
  t.ok(leaf.certChainPem.length > 0, 'and can issue');

  api.failNext.POST = [403];
  api.objects.delete(SECRET);
  await t.rejects(CertificateAuthority.open({ trustDomain: 'cluster.local', store: new KubernetesSecretRootStore(core, 'weft-system') }), { code: 'WEFT_ERR_CA_ROOT', message: /cannot create secret weft-system\/weft-ca-root[\s\S]*create secrets/ });
});
