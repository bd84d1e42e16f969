// The tap filter (common/tap.ts): parsed from the operator's flags with every value checked, carried as
// JSON to the agents (unknown fields refused there too), matched on source or destination; header
// redaction and bounds.
import t from 'tap';

import { filterFromJson, matchesFilter, MAX_HEADER_VALUE, MAX_HEADERS, parseMaxRps, parseTapFilter, REDACTED, safeHeaders, type TapSubject } from '../../common/tap.js';

const S: TapSubject = { srcWorkload: 'load', srcNamespace: 'shop', srcPod: 'load-1', dstWorkload: 'web', dstNamespace: 'shop', dstPod: 'web-2', method: 'GET', path: '/api/items?x=1', status: 503 };

t.test('parse and match', async (t) => {
  const m = (o: Parameters<typeof parseTapFilter>[0], s: Partial<TapSubject> = {}) => matchesFilter(parseTapFilter(o), { ...S, ...s });
  t.ok(m({}), 'an empty filter matches everything');
  t.ok(m({ selector: 'shop' }));
  t.notOk(m({ selector: 'other' }));
  t.ok(m({ selector: 'shop/web' }), 'the destination is the workload');
  t.ok(m({ selector: 'shop/load' }), 'the source is the workload');
  t.notOk(m({ selector: 'shop/db' }));
  t.ok(m({ to: 'shop/web' }));
  t.notOk(m({ to: 'shop/load' }), '--to is the destination only');
  t.ok(m({ pod: 'load-1' }));
  t.ok(m({ pod: 'web-2' }));
  t.notOk(m({ pod: 'web-1' }));
  t.ok(m({ path: '/api' }));
  t.notOk(m({ path: '/apx' }));
  t.ok(m({ method: 'get' }), 'methods compared upper-case');
  t.notOk(m({ method: 'POST' }));
  t.ok(m({ status: '5xx' }));
  t.notOk(m({ status: '2xx' }));
  t.ok(m({ status: '503' }));
  t.notOk(m({ status: '500' }));
  t.notOk(m({ selector: 'shop', status: '2xx' }), 'all fields must match');
  t.notOk(m({ status: '5xx' }, { status: 0 }), 'no response is no class');
  for (const [o, field] of [
    [{ selector: 'a/b/c' }, 'selector'],
    [{ selector: 'Shop' }, 'selector'],
    [{ to: '/web' }, '--to'],
    [{ pod: 'x_y' }, '--pod'],
    [{ path: 'api' }, '--path'],
    [{ method: 'GE T' }, '--method'],
    [{ status: '6xx' }, '--status'],
    [{ status: '2x' }, '--status'],
  ] as const) t.throws(() => parseTapFilter(o), { code: 'WEFT_ERR_CONFIG', message: new RegExp(`^${field.replace(/-/g, '\\-')}:`) }, `${JSON.stringify(o)} refused naming ${field}`);
  t.equal(parseMaxRps(undefined), 100);
  t.equal(parseMaxRps('1000'), 1000);
  t.throws(() => parseMaxRps('0'));
  t.throws(() => parseMaxRps('1.5'));
});

t.test('the filter as JSON on the agent', async (t) => {
  const f = parseTapFilter({ selector: 'shop/web', status: '4xx', path: '/a' });
  t.same(filterFromJson(JSON.stringify(f)), f, 'round trip');
  t.throws(() => filterFromJson('{"bodies":true}'), { message: /unknown field or wrong type: bodies/ });
  t.throws(() => filterFromJson('{"status":"500"}'), { message: /status/ });
  t.throws(() => filterFromJson('[]'));
  t.throws(() => filterFromJson('nope'));
});

t.test('header values: sensitive ones redacted whatever their case, all bounded', async (t) => {
  const raw = ['Authorization', 'Bearer x', 'COOKIE', 'a=1', 'set-cookie', 'b=2', 'Proxy-Authorization', 'Basic y', 'x-long', 'v'.repeat(1000)];
  const h = safeHeaders(raw);
  t.same(h.slice(0, 4), [['Authorization', REDACTED], ['COOKIE', REDACTED], ['set-cookie', REDACTED], ['Proxy-Authorization', REDACTED]]);
  t.equal(h[4]![1].length, MAX_HEADER_VALUE + 1, 'a long value is cut');
  const many = Array.from({ length: 100 }, (_, i) => [`h${i}`, 'v']).flat();
  t.equal(safeHeaders(many).length, MAX_HEADERS);
});
