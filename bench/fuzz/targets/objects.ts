// Object validation: YAML text (byte-mutated examples) through the local source's parser and the store's
// replaceAll, and objects (tree-mutated seeds of every kind) through upsert. Oracles: a refusal is a
// WeftConfigError whose `where` names the object and the field (never a TypeError from deep inside), a
// refused object changes nothing in the store, and an accepted one translates into a mesh config without
// throwing (accepted-then-crash is the worst outcome: the controller would push it to every agent).
import fc from 'fast-check';
import { WeftConfigError } from '../../../common/errors.js';
import { silentLogger } from '../../../common/log.js';
import { parseObjects } from '../../../controller/sources/yaml-objects.js';
import type { KubeObject } from '../../../controller/sources/types.js';
import { ALL_KIND_NAMES, BUILTIN_KINDS, KindRegistry } from '../../../controller/store/kinds.js';
import { CRD_DIR, loadCrdSchemas } from '../../../controller/store/crd-schemas.js';
import { ObjectStore } from '../../../controller/store/object-store.js';
import { translate } from '../../../controller/translate/mesh-config.js';
import { mutatedBytes } from '../mutate.js';
import { OracleViolation, type FuzzContext, type FuzzTarget } from '../target.js';
import { exampleYaml, seedObjects } from './object-seeds.js';
import { applyTreeOps, treeOp, type Json } from './tree-mutate.js';

type Input = { t: 'yaml'; text: string } | { t: 'tree'; obj: Json };

const OPTS = { trustDomain: 'cluster.local', rootNamespace: 'weft-system' };

function kinds(): KindRegistry {
  const k = new KindRegistry(BUILTIN_KINDS);
  loadCrdSchemas(CRD_DIR, k, silentLogger);
  return k;
}

/** A refusal must be ours and say where: "<Kind> <ns>/<name>, field <path>" (or the file and document). */
function checkRefusal(e: unknown, what: string): void {
  if (!(e instanceof WeftConfigError)) throw new OracleViolation('wrong', `${what} threw ${(e as Error)?.name ?? typeof e} instead of WeftConfigError: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  if (!/, field |^object$|, document \d+/.test(e.where)) throw new OracleViolation('wrong', `${what}: the refusal does not name a field: ${e.message}`);
}

export const objectsTarget: FuzzTarget = {
  name: 'objects',
  surface: 'controller/store (schemas from daemonset/crds + semantics/*), controller/sources/yaml-objects.ts, controller/translate',
  async setup(): Promise<FuzzContext<unknown>> {
    const registry = kinds();
    const seeds = seedObjects() as unknown as Json[];
    const yamlSeeds = exampleYaml().map((y) => Buffer.from(y));
    let store = new ObjectStore(registry);
    let used = 0;
    const arbitrary: fc.Arbitrary<Input> = fc.oneof(
      { weight: 1, arbitrary: mutatedBytes(yamlSeeds, 4).map((b): Input => ({ t: 'yaml', text: b.toString('utf8') })) },
      { weight: 4, arbitrary: fc.tuple(fc.nat(seeds.length - 1), fc.array(treeOp, { minLength: 1, maxLength: 4 })).map(([i, ops]): Input => ({ t: 'tree', obj: applyTreeOps(seeds[i]!, ops) })) },
    );
    const upsertOne = (obj: KubeObject, what: string) => {
      const rev = store.revision;
      const size = store.size();
      try {
        store.upsert(obj, 'fuzz');
      } catch (e) {
        checkRefusal(e, what);
        if (store.revision !== rev || store.size() !== size) throw new OracleViolation('wrong', `${what}: refused but the store changed (half applied)`);
        return;
      }
      try {
        translate(store, OPTS, 1);
      } catch (e) {
        throw new OracleViolation('wrong', `${what}: accepted, then the translation threw ${(e as Error).name}: ${(e as Error).message}`, { cause: e });
      }
    };
    return {
      arbitrary: arbitrary as fc.Arbitrary<unknown>,
      check(raw) {
        const input = raw as Input;
        // a fresh store now and then: the accepted objects pile up otherwise (and every translate reads them all)
        if (++used % 64 === 0) store = new ObjectStore(registry);
        if (input.t === 'tree') return upsertOne(input.obj as unknown as KubeObject, 'upsert');
        let objs: KubeObject[];
        try {
          objs = parseObjects(input.text, 'fuzz.yaml');
        } catch (e) {
          return checkRefusal(e, 'parseObjects');
        }
        let refused: { error: Error }[];
        try {
          ({ refused } = store.replaceAll(ALL_KIND_NAMES, objs, 'dir'));
        } catch (e) {
          throw new OracleViolation('wrong', `replaceAll threw ${(e as Error).name}: ${(e as Error).message}`, { cause: e });
        }
        for (const r of refused) checkRefusal(r.error, 'replaceAll');
        try {
          translate(store, OPTS, 1);
        } catch (e) {
          throw new OracleViolation('wrong', `replaceAll accepted objects the translation then threw on: ${(e as Error).message}`, { cause: e });
        }
      },
      show: (raw) => {
        const input = raw as Input;
        return input.t === 'yaml' ? JSON.stringify(input.text) : JSON.stringify(input.obj);
      },
      close: async () => {},
    };
  },
};
