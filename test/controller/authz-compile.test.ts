// AuthorizationPolicy through the store: what Weft cannot enforce is refused naming object and field; what
// it accepts compiles to typed entries (spiffe:// principals, parsed CIDRs, numeric ports, typed `when`
// keys); the built-in schema is the CRD's; PeerAuthentication's cross-field rules hold for local YAML too.
import t from 'tap';

import { silentLogger } from '../../common/log.js';
import type { KubeObject } from '../../controller/sources/types.js';
import { BUILTIN_KINDS, KindRegistry } from '../../controller/store/kinds.js';
import { ObjectStore } from '../../controller/store/object-store.js';
import { crdObjectSchema } from '../../controller/store/crd-schemas.js';
import { translate } from '../../controller/translate/mesh-config.js';
import type { AuthzEntry } from '../../common/policy.js';
import { applyUpdate, snapshotUpdate } from '../../proto/delta.js';
import type { ConfigUpdate__Output } from '../../proto/generated/weft/v1/ConfigUpdate.js';

const newStore = () => new ObjectStore(new KindRegistry(BUILTIN_KINDS), silentLogger);
const ap = (spec: Record<string, unknown>, extra: Record<string, unknown> = {}): KubeObject =>
  ({ apiVersion: 'weft.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'ap', namespace: 'shop', ...extra }, spec }) as KubeObject;
const pa = (spec: Record<string, unknown>): KubeObject => ({ apiVersion: 'weft.io/v1alpha1', kind: 'PeerAuthentication', metadata: { name: 'pa', namespace: 'shop' }, spec }) as KubeObject;

t.test('fields Weft does not enforce are refused, naming object and field', async (t) => {
  const cases: [KubeObject, RegExp][] = [
    [ap({ action: 'CUSTOM', provider: { name: 'ext' } }), /AuthorizationPolicy shop\/ap, field spec\.provider: is not supported/],
    [ap({ action: 'CUSTOM' }), /AuthorizationPolicy shop\/ap, field spec\.action: CUSTOM is not supported/],
    [ap({ rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }] }), /field spec\.rules\[0\]\.from\[0\]\.source\.requestPrincipals: is not supported: .*JWT/],
    [ap({ rules: [{ from: [{ source: { notRequestPrincipals: ['*'] } }] }] }), /source\.notRequestPrincipals: is not supported/],
    [ap({ rules: [{ from: [{ source: { remoteIpBlocks: ['1.2.3.4'] } }] }] }), /source\.remoteIpBlocks: is not supported/],
    [ap({ rules: [{ from: [{ source: { notRemoteIpBlocks: ['1.2.3.4'] } }] }] }), /source\.notRemoteIpBlocks: is not supported/],
    [ap({ rules: [{ when: [{ key: 'request.auth.claims[iss]', values: ['x'] }] }] }), /field spec\.rules\[0\]\.when\[0\]\.key: "request\.auth\.claims\[iss\]" is not supported/],
    [ap({ rules: [{ when: [{ key: 'connection.sni', values: ['x'] }] }] }), /when\[0\]\.key: "connection\.sni" is not a condition Weft enforces/],
    [ap({ rules: [{ when: [{ key: 'remote.ip', values: ['1.2.3.4'] }] }] }), /when\[0\]\.key: "remote\.ip" is not supported/],
    [ap({ rules: [{ when: [{ key: 'source.ip' }] }] }), /when\[0\]: condition on source\.ip needs values or notValues/],
    [ap({ rules: [{ when: [{ key: 'source.ip', values: ['nope'] }] }] }), /when\[0\]\.values\[0\]: "nope" is not an IP address/],
    [ap({ rules: [{ when: [{ key: 'destination.port', values: ['http'] }] }] }), /when\[0\]\.values\[0\]: "http" is not a port/],
    [ap({ rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/33'] } }] }] }), /ipBlocks\[0\]: "10\.0\.0\.0\/33": prefix length must be 0-32/],
    [ap({ rules: [{ from: [{ source: { principals: ['shop/frontend'] } }] }] }), /principals\[0\]: "shop\/frontend" is not a principal/],
    [ap({ rules: [{ from: [{ source: { principals: ['a*b'] } }] }] }), /principals\[0\]: "a\*b": "\*" is only allowed/],
    [ap({ rules: [{ from: [{ source: {} }] }] }), /from\[0\]\.source: must set at least one field/],
    [ap({ rules: [{ from: [{ source: { serviceAccounts: ['shop/a'], namespaces: ['shop'] } }] }] }), /source\.serviceAccounts: cannot be combined/],
    [ap({ rules: [{ from: [{ source: { serviceAccounts: ['frontend'] } }] }] }), /serviceAccounts\[0\]: "frontend" is not <namespace>\/<service-account>/],
    [ap({ rules: [{ to: [{ operation: { paths: ['/api/{*}'] } }] }] }), /paths\[0\]: "\/api\/\{\*\}": path templates/],
    [ap({ rules: [{ to: [{ operation: { paths: ['api'] } }] }] }), /paths\[0\]: "api" must start with "\/"/],
    [ap({ rules: [{ to: [{ operation: {} }] }] }), /to\[0\]\.operation: must set at least one field/],
    [ap({ rules: [{ from: [] }] }), /rules\[0\]\.from: must be a non-empty list/],
    [ap({ targetRefs: [{ kind: 'Service', name: 'x' }] }), /spec\.targetRefs: is not (supported|a known field)/],
    [ap({ rules: [{}] }, { annotations: { 'weft.io/dry-run': 'yes' } }), /metadata\.annotations\.weft\.io\/dry-run: must be "true" or "false"/],
    [pa({ mtls: { mode: 'STRICT' }, portLevelMtls: { '8080': { mode: 'DISABLE' } } }), /PeerAuthentication shop\/pa, field spec\.portLevelMtls: needs a selector/],
    [pa({ selector: { matchLabels: { app: 'a' } }, portLevelMtls: { http: { mode: 'DISABLE' } } }), /field spec\.portLevelMtls\.http: keys must be port numbers/],
  ];
  const s = newStore();
  for (const [obj, re] of cases) t.throws(() => s.upsert(obj, 'test'), { code: 'WEFT_ERR_CONFIG', message: re }, re.source);
  t.equal(s.size(), 0, 'nothing stored');
});

t.test('an accepted policy compiles to typed matchers', async (t) => {
  const s = newStore();
  s.upsert({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } } as KubeObject, 'test');
  s.upsert(
    ap(
      {
        action: 'DENY',
        selector: { matchLabels: { app: 'cart' } },
        rules: [
          {
            from: [{ source: { principals: ['cluster.local/ns/shop/sa/frontend', 'spiffe://cluster.local/ns/ops/*', '*/sa/x', '*'], notIpBlocks: ['10.98.2.7/24'], notNamespaces: ['kube-*'] } }],
            to: [{ operation: { ports: ['8080'], methods: ['GET'], hosts: ['Cart.Shop'], paths: ['/admin/*'] } }],
            when: [
              { key: 'request.headers[X-Debug]', values: ['1'] },
              { key: 'destination.port', notValues: ['9090'] },
              { key: 'source.ip', values: ['fd00::1'] },
            ],
          },
        ],
      },
      { annotations: { 'weft.io/dry-run': 'true' } },
    ),
    'test',
  );
  const cfg = translate(s, { trustDomain: 'cluster.local', rootNamespace: 'weft-system' }, 1);
  const e = cfg.policies.find((p): p is AuthzEntry => p.kind === 'AuthorizationPolicy')!;
  t.equal(e.key, 'AuthorizationPolicy/shop/ap');
  t.same(e.authz, {
    action: 'DENY',
    dryRun: true,
    scope: { meshWide: false, namespace: 'shop', matchLabels: { app: 'cart' } },
    rules: [
      {
        from: [
          {
            principals: [{ exact: 'spiffe://cluster.local/ns/shop/sa/frontend' }, { prefix: 'spiffe://cluster.local/ns/ops/' }, { suffix: '/sa/x' }, { presence: true }],
            notIpBlocks: [{ family: 4, addr: '10.98.2.0', bits: 24 }],
            notNamespaces: [{ prefix: 'kube-' }],
          },
        ],
        to: [{ ports: [8080], methods: [{ exact: 'GET' }], hosts: [{ exact: 'cart.shop', ci: true }], paths: [{ prefix: '/admin/' }] }],
        when: [
          { key: 'request.headers', header: 'x-debug', values: [{ exact: '1' }] },
          { key: 'destination.port', notValues: [9090] },
          { key: 'source.ip', values: [{ family: 6, addr: 'fd00:0:0:0:0:0:0:1', bits: 128 }] },
        ],
      },
    ],
  });
});

t.test('the root namespace makes a policy mesh-wide; no rules stay unset', async (t) => {
  const s = newStore();
  s.upsert({ ...ap({ action: 'ALLOW' }), metadata: { name: 'mesh', namespace: 'weft-system' } } as KubeObject, 'test');
  const cfg = translate(s, { trustDomain: 'cluster.local', rootNamespace: 'weft-system' }, 1);
  const e = cfg.policies[0] as AuthzEntry;
  t.same(e.authz.scope, { meshWide: true, namespace: 'weft-system' });
  t.equal(e.authz.rules, undefined);
});

t.test('one schema: the built-in kinds carry the CRD schemas of daemonset/crds', async (t) => {
  for (const [kind, file] of [['AuthorizationPolicy', 'authorizationpolicy.yaml'], ['PeerAuthentication', 'peerauthentication.yaml']] as const) {
    const k = BUILTIN_KINDS.find((x) => x.kind === kind)!;
    t.same(k.schema, crdObjectSchema(file), kind);
  }
});

t.test('PeerAuthentication: portLevelMtls reaches the workload; a selector policy without mtls inherits the mode', async (t) => {
  const s = newStore();
  s.upsert({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'weft.io/mesh': 'enabled' } } } as KubeObject, 'test');
  const podOf = (name: string, app: string): KubeObject =>
    ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'shop', uid: name, labels: { app } }, spec: { nodeName: 'n1', containers: [{ name: 'c' }] }, status: { phase: 'Running', podIP: `10.98.1.${name.length}` } }) as KubeObject;
  s.upsert(podOf('db', 'db'), 'test');
  s.upsert(podOf('webx', 'web'), 'test');
  s.upsert({ ...pa({ mtls: { mode: 'STRICT' } }), metadata: { name: 'ns-strict', namespace: 'shop' } } as KubeObject, 'test');
  s.upsert({ ...pa({ selector: { matchLabels: { app: 'db' } }, portLevelMtls: { '9100': { mode: 'PERMISSIVE' } } }), metadata: { name: 'db-metrics', namespace: 'shop' } } as KubeObject, 'test');
  const cfg = translate(s, { trustDomain: 'cluster.local', rootNamespace: 'weft-system' }, 1);
  const db = cfg.workloads.find((w) => w.name === 'db')!;
  const web = cfg.workloads.find((w) => w.name === 'webx')!;
  t.equal(db.mtlsMode, 'STRICT', 'inherited from the namespace policy');
  t.same(db.portMtls, { '9100': 'PERMISSIVE' });
  t.equal(web.mtlsMode, 'STRICT');
  t.equal(web.portMtls, undefined);
  const back = applyUpdate(undefined, JSON.parse(JSON.stringify(snapshotUpdate(cfg, 'B'))) as ConfigUpdate__Output);
  t.same(back.config.workloads.find((w) => w.name === 'db')!.portMtls, { '9100': 'PERMISSIVE' }, 'carried on the config stream');
  t.equal(back.config.workloads.find((w) => w.name === 'webx')!.portMtls, undefined);
});
