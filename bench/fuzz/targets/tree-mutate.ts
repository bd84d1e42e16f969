// Structural mutation of a JSON-shaped object: replace, delete or add one node anywhere in the tree with a
// hostile value (wrong type, huge, empty, deep, prototype names). What a YAML file can say, without the
// YAML syntax in the way, so the validators see every wrong shape.
import fc from 'fast-check';
import { hostileString } from '../mutate.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export const hostileValue: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<Json>(null, true, false, 0, -1, 1.5, 1e308, -0, 2 ** 53, 65536, 99999999999, [], {}, [null], { '': null }) },
  { weight: 3, arbitrary: hostileString },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() as fc.Arbitrary<Json> },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json> },
);

export interface TreeOp {
  at: number;
  how: 'replace' | 'delete' | 'add' | 'wrap' | 'copy';
  key: string;
  value: Json;
}

export const treeOp: fc.Arbitrary<TreeOp> = fc.record({
  at: fc.nat(),
  how: fc.constantFrom('replace', 'delete', 'add', 'wrap', 'copy'),
  key: fc.oneof(fc.constantFrom('spec', 'rules', 'name', 'namespace', 'port', 'value', 'type', 'kind', 'matches', 'from', 'to', 'when', 'selector', 'matchLabels', '__proto__', 'constructor'), fc.string({ maxLength: 8 })),
  value: hostileValue,
});

interface Slot {
  parent: Json[] | { [k: string]: Json };
  key: string | number;
}

function slots(root: Json, out: Slot[] = []): Slot[] {
  if (root === null || typeof root !== 'object') return out;
  for (const [k, v] of Object.entries(root)) {
    out.push({ parent: root, key: Array.isArray(root) ? Number(k) : k });
    slots(v, out);
  }
  return out;
}

export function applyTreeOps(obj: Json, ops: readonly TreeOp[]): Json {
  const root = structuredClone(obj);
  for (const op of ops) {
    // the generated value is fast-check's (reused while shrinking): never put it in the tree by reference
    const o = { ...op, value: structuredClone(op.value) };
    const all = slots(root);
    if (all.length === 0) break;
    const s = all[o.at % all.length]!;
    const p = s.parent as Record<string | number, Json>;
    switch (o.how) {
      case 'replace':
        p[s.key] = o.value;
        break;
      case 'delete':
        if (Array.isArray(p)) (p as Json[]).splice(s.key as number, 1);
        else delete p[s.key];
        break;
      case 'add': {
        const v = p[s.key];
        if (Array.isArray(v)) v.push(o.value);
        else if (v && typeof v === 'object') Object.defineProperty(v, o.key, { value: o.value, enumerable: true, writable: true, configurable: true });
        else p[s.key] = o.value;
        break;
      }
      case 'wrap':
        p[s.key] = [p[s.key]!];
        break;
      case 'copy': {
        // another node's subtree here: right shapes in wrong places
        const other = all[(o.at * 7 + 3) % all.length]!;
        p[s.key] = structuredClone((other.parent as Record<string | number, Json>)[other.key]!);
        break;
      }
    }
  }
  return root;
}
