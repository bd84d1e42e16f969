// What the fuzz job (bench/fuzz) found, each as its smallest input: bad input gets a clear, typed refusal
// naming what was wrong, never a TypeError or a crash.
import t from 'tap';
import { WeftConfigError } from '../../common/errors.js';
import { silentLogger } from '../../common/log.js';
import { createSpiffeCsrPem, generateEcKeyPair, x509 } from '../../common/x509.js';
import { validateCsr } from '../../controller/ca/csr-authorizer.js';
import { CsrRefusedError } from '../../controller/ca/errors.js';
import { parseObjects } from '../../controller/sources/yaml-objects.js';
import { ALL_KIND_NAMES, BUILTIN_KINDS, KindRegistry } from '../../controller/store/kinds.js';
import { ObjectStore } from '../../controller/store/object-store.js';
import { UpdateAssembler } from '../../proto/delta.js';
import { ConfigDecodeError } from '../../proto/policy-from-wire.js';
import type { ConfigUpdate__Output } from '../../proto/generated/weft/v1/ConfigUpdate.js';

const store = () => new ObjectStore(new KindRegistry(BUILTIN_KINDS), silentLogger);

t.test('a YAML document without apiVersion is refused by name, not a TypeError in replaceAll', async (t) => {
  const s = store();
  const { refused } = s.replaceAll(ALL_KIND_NAMES, parseObjects('kind: Namespace\nmetadata:\n  name: shop\n', 'a.yaml'), 'dir');
  t.equal(refused.length, 1);
  t.type(refused[0]!.error, WeftConfigError);
  t.match(refused[0]!.error.message, /Namespace shop, field apiVersion: is required/);
  t.equal(s.size(), 0, 'nothing applied');
});

t.test('a List item that is not a mapping is refused as such (replaceAll and upsert)', async (t) => {
  const s = store();
  const objs = parseObjects('apiVersion: v1\nkind: List\nitems: [null, 3]\n', 'a.yaml');
  const { refused } = s.replaceAll(ALL_KIND_NAMES, objs, 'dir');
  t.equal(refused.length, 2);
  for (const r of refused) t.match(r.error.message, /^object: must be a mapping/);
  t.throws(() => s.upsert(null as never, 'x'), WeftConfigError);
});

t.test('a YAML alias to no anchor names the file and document (the yaml library throws a ReferenceError)', async (t) => {
  t.throws(() => parseObjects('apiVersion: v1\nkind: *Namespace\n', 'a.yaml'), { name: 'WeftConfigError', message: /a\.yaml, document 1: is not valid YAML/ });
});

t.test('a CSR whose key parameters are not readable ASN.1 is refused with WEFT_ERR_CSR_KEY_ALGORITHM', async (t) => {
  const pem = await createSpiffeCsrPem('spiffe://cluster.local/ns/default/sa/web', await generateEcKeyPair('P-256'));
  const der = Buffer.from(x509.PemConverter.decodeFirst(pem));
  // the namedCurve OID (prime256v1) in the SubjectPublicKeyInfo: its tag 06 (OID) made 0a (ENUMERATED)
  const at = der.indexOf(Buffer.from('06082a8648ce3d030107', 'hex'));
  t.ok(at > 0);
  der[at] = 0x0a;
  const bad = x509.PemConverter.encode(der, 'CERTIFICATE REQUEST');
  await t.rejects(validateCsr(bad, 'cluster.local'), CsrRefusedError);
  await t.rejects(validateCsr(bad, 'cluster.local'), { code: 'WEFT_ERR_CSR_KEY_ALGORITHM' });
});

t.test('a config update whose policy entry is not a policy is NACKed naming the entry', async (t) => {
  const empty = { version: 5, snapshot: true, baseVersion: 0, more: false, trustDomain: 'cluster.local', trustBundlePem: '', upsertNodes: [], removeNodes: [], upsertWorkloads: [], removeWorkloads: [], upsertServices: [], removeServices: [], removePolicies: [] };
  const entry = (json: string) => ({ ...empty, upsertPolicies: [{ key: 'AuthorizationPolicy/shop/p', json }] }) as unknown as ConfigUpdate__Output;
  const cases: [string, RegExp][] = [
    ['null', /is not an object/],
    ['{nope', /JSON does not parse/],
    ['{"kind":"Nope","key":"AuthorizationPolicy/shop/p","namespace":"shop","name":"p"}', /kind "Nope" is not a policy kind/],
    ['{"kind":"AuthorizationPolicy","key":"other","namespace":"shop","name":"p","authz":{}}', /its JSON says key "other"/],
    ['{"kind":"AuthorizationPolicy","key":"AuthorizationPolicy/shop/p","namespace":"shop","name":"p"}', /field authz must be an object/],
  ];
  for (const [json, msg] of cases) {
    const err = (() => {
      try {
        new UpdateAssembler().add(entry(json));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    t.type(err, ConfigDecodeError, json);
    t.match((err as ConfigDecodeError).message, msg);
    t.match((err as ConfigDecodeError).message, /policy entry "AuthorizationPolicy\/shop\/p"/);
    t.equal((err as ConfigDecodeError).code, 'WEFT_ERR_CONFIG_DECODE');
  }
});

t.test('a tunnel CONNECT to a local pod at port 400 digits long is refused, not left connecting forever', async (t) => {
  const { h2Target } = await import('../../bench/fuzz/targets/h2.js');
  const { frame, headerBlock, settings, PREFACE, T, F } = await import('../../bench/fuzz/targets/h2-frames.js');
  const ctx = await h2Target.setup();
  t.teardown(() => ctx.close());
  const connect = frame(T.HEADERS, F.END_HEADERS, 1, headerBlock([[':method', 'CONNECT'], [':authority', '127.0.20.2:' + '9'.repeat(400)]]));
  await ctx.check([Buffer.concat([PREFACE, settings([]), connect])]);
  await new Promise((r) => setTimeout(r, 200));
  const opening = (process as unknown as { _getActiveHandles(): { readyState?: string }[] })._getActiveHandles().filter((h) => h.readyState === 'opening');
  t.equal(opening.length, 0, 'no connect to the pod left pending');
});
