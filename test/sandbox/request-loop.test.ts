// effectOf: when a change took effect for new requests, read off a request loop's stamped samples.
import t from 'tap';

import { effectOf, parseSamples } from '../../sandbox/request-loop.js';

const text = ['1000 1010 v2', '1015 1030 v2', '1032 1045 v1', '1050 1060 v2', '1062 1070 v1', '1072 1080 v1', 'curl: (7) refused', ''].join('\n');

t.test('parseSamples reads "start end body" lines and skips the rest', async (t) => {
  const s = parseSamples(text);
  t.equal(s.length, 6);
  t.same(s[0], { start: 1000, end: 1010, body: 'v2' });
});

t.test('effectOf: from the first request after the last old answer', async (t) => {
  const s = parseSamples(text);
  const isNew = (b: string) => b === 'v1';
  t.same(effectOf(s, 1012, isNew), { after: 5, lastOldMs: 38, allNewFromMs: 50 }, 'a late old answer moves the effect past it');
  t.same(effectOf(s, 1055, isNew), { after: 2, lastOldMs: undefined, allNewFromMs: 7 }, 'no old answer: the first request after the change');
  t.same(effectOf(s, 1012, isNew, 1065), { after: 3, lastOldMs: 38, allNewFromMs: undefined }, 'requests ending after `until` do not count; never all new');
  t.same(effectOf(s, 2000, isNew), { after: 0, lastOldMs: undefined, allNewFromMs: undefined }, 'nothing observed after the change');
});
