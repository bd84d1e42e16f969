// Istio's AuthorizationPolicy semantics as a table: policies are written as users write them (raw specs),
// compiled by the controller's compiler, selected by the agent's table, and evaluated by the agent's
// evaluator. Every field, every not* field, the match kinds, the evaluation order, scope, unset rules, [{}],
// AUDIT, dry run, and the HTTP-only fields on plain TCP.
import t from 'tap';

import type { Workload } from '../../common/mesh.js';
import type { CompiledPolicy } from '../../common/policy.js';
import { evaluate, type AuthzInput, type HttpAttributes } from '../../agent/authz/evaluate.js';
import { AuthzTable } from '../../agent/authz/table.js';
import { compileAuthorizationPolicy } from '../../controller/translate/policy/authz.js';
import type { KubeObject } from '../../controller/sources/types.js';

const ROOT = 'weft-system';
const workload = (ns: string, name: string, labels: Record<string, string>): Workload => ({
  uid: `${ns}/${name}`,
  namespace: ns,
  name,
  serviceAccount: name,
  node: 'n1',
  ips: ['10.98.1.10'],
  labels,
  meshed: true,
  hostNetwork: false,
  mtlsMode: 'PERMISSIVE',
  workloadName: name,
});
const CART = workload('shop', 'cart', { app: 'cart' });
const WEB = workload('shop', 'web', { app: 'web' });
const OTHER_NS = workload('blog', 'cart', { app: 'cart' });

interface P {
  name?: string;
  ns?: string;
  action?: string;
  selector?: Record<string, string>;
  rules?: unknown[];
  dryRun?: boolean;
}
function policy(p: P, i = 0): CompiledPolicy {
  const obj: KubeObject = {
    apiVersion: 'weft.io/v1alpha1',
    kind: 'AuthorizationPolicy',
    metadata: { name: p.name ?? `p${i}`, namespace: p.ns ?? 'shop', ...(p.dryRun ? { annotations: { 'weft.io/dry-run': 'true' } } : {}) },
    spec: { ...(p.action ? { action: p.action } : {}), ...(p.selector ? { selector: { matchLabels: p.selector } } : {}), ...(p.rules !== undefined ? { rules: p.rules } : {}) },
  } as KubeObject;
  const out = compileAuthorizationPolicy(obj, { trustDomain: 'cluster.local', rootNamespace: ROOT, workloads: [], services: [] });
  if (out.length !== 1) throw new Error(`policy ${JSON.stringify(p)} did not compile`);
  return out[0]!;
}

const http = (method: string, path: string, host = 'cart.shop.svc.cluster.local', headers: Record<string, string> = {}): HttpAttributes => ({ method, path, host, header: (n) => headers[n] });
const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const ADMIN = 'spiffe://cluster.local/ns/ops/sa/admin';
const req = (over: Partial<AuthzInput> = {}): AuthzInput => ({ principal: FRONTEND, sourceIp: '10.98.2.5', destinationIp: '10.98.1.10', destinationPort: 8080, http: http('GET', '/cart/1'), ...over });
const tcp = (over: Partial<AuthzInput> = {}): AuthzInput => req({ http: undefined, ...over });

function decide(policies: P[], input: AuthzInput, w: Workload = CART) {
  const table = new AuthzTable(1, policies.map((p, i) => policy(p, i)), [CART, WEB, OTHER_NS]);
  return evaluate(table.forWorkload(w.uid), input);
}

type Case = [what: string, policies: P[], input: AuthzInput, allow: boolean, w?: Workload];
const allowRule = (rule: unknown): P[] => [{ action: 'ALLOW', rules: [rule] }];
const denyRule = (rule: unknown): P[] => [{ action: 'DENY', rules: [rule] }];
const src = (source: Record<string, unknown>) => ({ from: [{ source }] });
const op = (operation: Record<string, unknown>) => ({ to: [{ operation }] });
const when = (key: string, values?: string[], notValues?: string[]) => ({ when: [{ key, ...(values ? { values } : {}), ...(notValues ? { notValues } : {}) }] });

const CASES: Case[] = [
  // evaluation order and defaults
  ['no policy: allow', [], req(), true],
  ['ALLOW policy without rules denies all', [{ action: 'ALLOW' }], req(), false],
  ['ALLOW rules: [] is no rules: denies all', [{ action: 'ALLOW', rules: [] }], req(), false],
  ['ALLOW [{}] allows all', allowRule({}), req(), true],
  ['DENY without rules denies nothing', [{ action: 'DENY' }], req(), true],
  ['DENY [{}] denies all', denyRule({}), req(), false],
  ['DENY wins over a matching ALLOW', [{ action: 'ALLOW', rules: [{}] }, { action: 'DENY', rules: [{}] }], req(), false],
  ['an ALLOW that does not match, another that does: allow', [{ action: 'ALLOW', rules: [src({ principals: [ADMIN.slice(9)] })] }, { action: 'ALLOW', rules: [{}] }], req(), true],
  ['AUDIT alone never denies', [{ action: 'AUDIT', rules: [{}] }], req(), true],
  ['AUDIT does not count as an ALLOW selecting the workload', [{ action: 'AUDIT', rules: [src({ principals: [ADMIN.slice(9)] })] }], req(), true],
  ['dry-run DENY does not deny', [{ action: 'DENY', rules: [{}], dryRun: true }], req(), true],
  ['dry-run ALLOW does not turn on default deny', [{ action: 'ALLOW', rules: [src({ principals: [ADMIN.slice(9)] })], dryRun: true }], req(), true],
  // scope
  ['selector not matching: policy does not apply', [{ action: 'DENY', selector: { app: 'web' }, rules: [{}] }], req(), true],
  ['selector matching applies', [{ action: 'DENY', selector: { app: 'cart' }, rules: [{}] }], req(), false],
  ['no selector: the whole namespace', [{ action: 'DENY', rules: [{}] }], req(), false, WEB],
  ['other namespace: does not apply', [{ action: 'DENY', ns: 'blog', rules: [{}] }], req(), true],
  ['root namespace without selector: mesh-wide', [{ action: 'DENY', ns: ROOT, rules: [{}] }], req(), false, OTHER_NS],
  ['root namespace with selector: matching labels in any namespace', [{ action: 'DENY', ns: ROOT, selector: { app: 'cart' }, rules: [{}] }], req(), false, OTHER_NS],
  ['root namespace with selector: others untouched', [{ action: 'DENY', ns: ROOT, selector: { app: 'cart' }, rules: [{}] }], req(), true, WEB],
  // source fields
  ['principals exact (Istio form)', allowRule(src({ principals: ['cluster.local/ns/shop/sa/frontend'] })), req(), true],
  ['principals exact (spiffe form)', allowRule(src({ principals: [FRONTEND] })), req(), true],
  ['principals other SA', allowRule(src({ principals: ['cluster.local/ns/shop/sa/other'] })), req(), false],
  ['principals prefix', allowRule(src({ principals: ['cluster.local/ns/shop/*'] })), req(), true],
  ['principals suffix', allowRule(src({ principals: ['*/sa/frontend'] })), req(), true],
  ['principals presence: mTLS caller', allowRule(src({ principals: ['*'] })), req(), true],
  ['principals presence: plaintext caller', allowRule(src({ principals: ['*'] })), req({ principal: undefined }), false],
  ['notPrincipals excludes', allowRule(src({ notPrincipals: ['cluster.local/ns/shop/sa/frontend'] })), req(), false],
  ['notPrincipals lets others in', allowRule(src({ notPrincipals: ['cluster.local/ns/shop/sa/other'] })), req(), true],
  ['DENY notPrincipals * denies plaintext', denyRule(src({ notPrincipals: ['*'] })), req({ principal: undefined }), false],
  ['DENY notPrincipals * keeps mTLS', denyRule(src({ notPrincipals: ['*'] })), req(), true],
  ['namespaces', allowRule(src({ namespaces: ['shop'] })), req(), true],
  ['namespaces other', allowRule(src({ namespaces: ['ops'] })), req(), false],
  ['namespaces prefix', allowRule(src({ namespaces: ['sh*'] })), req(), true],
  ['notNamespaces excludes', allowRule(src({ notNamespaces: ['shop'] })), req(), false],
  ['notNamespaces lets others in', allowRule(src({ notNamespaces: ['ops'] })), req(), true],
  ['serviceAccounts', allowRule(src({ serviceAccounts: ['shop/frontend'] })), req(), true],
  ['serviceAccounts other', allowRule(src({ serviceAccounts: ['ops/admin'] })), req(), false],
  ['notServiceAccounts', allowRule(src({ notServiceAccounts: ['shop/frontend'] })), req(), false],
  ['ipBlocks CIDR', allowRule(src({ ipBlocks: ['10.98.2.0/24'] })), req(), true],
  ['ipBlocks single address', allowRule(src({ ipBlocks: ['10.98.2.5'] })), req(), true],
  ['ipBlocks miss', allowRule(src({ ipBlocks: ['10.98.3.0/24'] })), req(), false],
  ['ipBlocks with unknown source ip', allowRule(src({ ipBlocks: ['0.0.0.0/0'] })), req({ sourceIp: undefined }), false],
  ['notIpBlocks', allowRule(src({ notIpBlocks: ['10.98.0.0/16'] })), req(), false],
  ['notIpBlocks lets others in', allowRule(src({ notIpBlocks: ['10.97.0.0/16'] })), req(), true],
  ['source fields are ANDed', allowRule(src({ namespaces: ['shop'], ipBlocks: ['10.98.3.0/24'] })), req(), false],
  ['from entries are ORed', allowRule({ from: [{ source: { namespaces: ['ops'] } }, { source: { namespaces: ['shop'] } }] }), req(), true],
  // operation fields
  ['ports', allowRule(op({ ports: ['8080'] })), req(), true],
  ['ports miss', allowRule(op({ ports: ['9090'] })), req(), false],
  ['notPorts', allowRule(op({ notPorts: ['8080'] })), req(), false],
  ['methods', allowRule(op({ methods: ['GET', 'POST'] })), req(), true],
  ['methods miss', allowRule(op({ methods: ['POST'] })), req(), false],
  ['notMethods', allowRule(op({ notMethods: ['GET'] })), req(), false],
  ['paths exact', allowRule(op({ paths: ['/cart/1'] })), req(), true],
  ['paths prefix', allowRule(op({ paths: ['/cart/*'] })), req(), true],
  ['paths suffix', allowRule(op({ paths: ['*/1'] })), req(), true],
  ['paths presence', allowRule(op({ paths: ['*'] })), req(), true],
  ['paths miss', allowRule(op({ paths: ['/admin'] })), req(), false],
  ['notPaths', allowRule(op({ notPaths: ['/cart/*'] })), req(), false],
  ['hosts exact, case-insensitive, port ignored', allowRule(op({ hosts: ['Cart.shop.svc.cluster.local'] })), req({ http: http('GET', '/', 'cart.shop.svc.cluster.local:8080') }), true],
  ['hosts suffix', allowRule(op({ hosts: ['*.svc.cluster.local'] })), req(), true],
  ['hosts miss', allowRule(op({ hosts: ['web.shop'] })), req(), false],
  ['notHosts', allowRule(op({ notHosts: ['cart.*'] })), req(), false],
  ['operation fields are ANDed', allowRule(op({ methods: ['GET'], paths: ['/admin'] })), req(), false],
  ['to entries are ORed', allowRule({ to: [{ operation: { paths: ['/admin'] } }, { operation: { methods: ['GET'] } }] }), req(), true],
  ['gRPC: method POST and path /pkg.Service/Method', allowRule(op({ methods: ['POST'], paths: ['/shop.Cart/*'] })), req({ http: http('POST', '/shop.Cart/Get') }), true],
  // when
  ['when request header', allowRule(when('request.headers[x-debug]', ['1'])), req({ http: http('GET', '/', 'h', { 'x-debug': '1' }) }), true],
  ['when request header absent', allowRule(when('request.headers[x-debug]', ['1'])), req(), false],
  ['when request header notValues', allowRule(when('request.headers[x-debug]', undefined, ['1'])), req({ http: http('GET', '/', 'h', { 'x-debug': '1' }) }), false],
  ['when header presence', allowRule(when('request.headers[x-debug]', ['*'])), req({ http: http('GET', '/', 'h', { 'x-debug': 'yes' }) }), true],
  ['when source.principal', allowRule(when('source.principal', ['cluster.local/ns/shop/sa/frontend'])), req(), true],
  ['when source.principal notValues', allowRule(when('source.principal', undefined, ['*'])), req(), false],
  ['when source.namespace', allowRule(when('source.namespace', ['shop'])), req(), true],
  ['when source.ip', allowRule(when('source.ip', ['10.98.2.0/24'])), req(), true],
  ['when source.ip notValues', allowRule(when('source.ip', undefined, ['10.98.2.5'])), req(), false],
  ['when destination.ip', allowRule(when('destination.ip', ['10.98.1.10'])), req(), true],
  ['when destination.port', allowRule(when('destination.port', ['8080'])), req(), true],
  ['when destination.port notValues', allowRule(when('destination.port', undefined, ['8080'])), req(), false],
  ['when conditions are ANDed', allowRule({ when: [{ key: 'source.namespace', values: ['shop'] }, { key: 'destination.port', values: ['1'] }] }), req(), false],
  ['from, to and when are ANDed', allowRule({ ...src({ namespaces: ['shop'] }), ...op({ methods: ['GET'] }), ...when('destination.port', ['9090']) }), req(), false],
  // plain TCP: HTTP-only fields
  ['TCP: ALLOW rule with methods does not match', allowRule(op({ methods: ['GET'] })), tcp(), false],
  ['TCP: ALLOW rule with ports matches', allowRule(op({ ports: ['8080'] })), tcp(), true],
  ['TCP: ALLOW rule with a header condition does not match', allowRule(when('request.headers[x]', ['1'])), tcp(), false],
  ['TCP: ALLOW with an HTTP rule and an L4 rule: the L4 one matches', [{ action: 'ALLOW', rules: [op({ methods: ['GET'] }), src({ namespaces: ['shop'] })] }], tcp(), true],
  ['TCP: DENY rule with paths matches (fail closed)', denyRule(op({ paths: ['/admin'] })), tcp(), false],
  ['TCP: DENY rule with paths and a source still needs the source', denyRule({ ...src({ namespaces: ['ops'] }), ...op({ paths: ['/admin'] }) }), tcp(), true],
  ['TCP: DENY rule with a header condition matches', denyRule(when('request.headers[x-debug]', ['1'])), tcp(), false],
  ['TCP: DENY with ports on another port', denyRule(op({ ports: ['9090'], methods: ['GET'] })), tcp(), true],
];

t.test("Istio's semantics, case by case", async (t) => {
  for (const [what, policies, input, allow, w] of CASES) {
    const d = decide(policies, input, w);
    t.equal(d.allow, allow, what);
  }
});

t.test('the decision names the deciding policy and the reason', async (t) => {
  const d = decide([{ name: 'deny-admin', action: 'DENY', rules: [op({ paths: ['/admin'] })] }, { name: 'allow-all', action: 'ALLOW', rules: [{}] }], req({ http: http('GET', '/admin') }));
  t.same({ allow: d.allow, reason: d.reason, policy: d.policy }, { allow: false, reason: 'denied_by_policy', policy: 'shop/deny-admin' });
  const a = decide([{ name: 'allow-all', action: 'ALLOW', rules: [{}] }], req());
  t.same({ allow: a.allow, reason: a.reason, policy: a.policy }, { allow: true, reason: 'allowed_by_policy', policy: 'shop/allow-all' });
  const n = decide([{ name: 'allow-admin', action: 'ALLOW', rules: [src({ principals: [ADMIN] })] }], req());
  t.same({ allow: n.allow, reason: n.reason, policy: n.policy }, { allow: false, reason: 'no_allow_matched', policy: undefined });
  t.equal(decide([], req()).reason, 'no_policy');
});

t.test('AUDIT marks, dry run reports what would have happened', async (t) => {
  const d = decide([{ name: 'audit', action: 'AUDIT', rules: [src({ notNamespaces: ['ops'] })] }], req());
  t.same(d.audited, ['shop/audit']);
  t.equal(d.allow, true);
  const dry = decide([{ name: 'would-deny', action: 'DENY', rules: [{}], dryRun: true }], req());
  t.equal(dry.allow, true, 'enforced decision unchanged');
  t.same(dry.dryRun, { allow: false, reason: 'denied_by_policy', policy: 'shop/would-deny' });
  const dryAllow = decide([{ name: 'would-allow-admin', action: 'ALLOW', rules: [src({ principals: [ADMIN] })], dryRun: true }], req());
  t.same(dryAllow.dryRun, { allow: false, reason: 'no_allow_matched' }, 'a dry-run ALLOW shows the default deny it would cause');
  t.equal(decide([], req()).dryRun, undefined, 'no dry-run policy: nothing reported');
});

t.test('the table lists what each policy selects', async (t) => {
  const table = new AuthzTable(3, [policy({ name: 'only-cart', selector: { app: 'cart' }, rules: [{}] }), policy({ name: 'mesh', ns: ROOT, rules: [{}] })], [CART, WEB, OTHER_NS]);
  t.same(table.selectedBy('AuthorizationPolicy/shop/only-cart'), ['shop/cart']);
  t.same(table.selectedBy(`AuthorizationPolicy/${ROOT}/mesh`).sort(), ['blog/cart', 'shop/cart', 'shop/web']);
  t.equal(table.version, 3);
});

t.test('IPv6 blocks and v4-mapped sources', async (t) => {
  t.equal(decide(allowRule(src({ ipBlocks: ['fd00:98::/32'] })), req({ sourceIp: 'fd00:98:2::5' })).allow, true);
  t.equal(decide(allowRule(src({ ipBlocks: ['fd00:98::/32'] })), req({ sourceIp: 'fd00:99::5' })).allow, false);
  t.equal(decide(allowRule(src({ ipBlocks: ['10.98.2.0/24'] })), req({ sourceIp: '::ffff:10.98.2.5' })).allow, true);
});
