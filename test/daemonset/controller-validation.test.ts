// The controller validates weft.io objects (from local YAML, `weft apply`, the API) against the schemas in
// daemonset/crds: it must accept every example and refuse the malformed objects, as the API server would.
import t from 'tap';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import { silentLogger } from '../../common/log.js';
import type { KubeObject } from '../../controller/sources/types.js';
import { loadCrdSchemas } from '../../controller/store/crd-schemas.js';
import { BUILTIN_KINDS, KindRegistry } from '../../controller/store/kinds.js';
import { ObjectStore } from '../../controller/store/object-store.js';
import { MALFORMED, patched } from './crd-cases.js';
import { daemonsetDir, loadYamlFile } from './manifests.js';

const kinds = new KindRegistry(BUILTIN_KINDS);
const installed = loadCrdSchemas(join(daemonsetDir, 'crds'), kinds, silentLogger);
const store = new ObjectStore(kinds, silentLogger);

t.test('the controller loads the three CRD schemas', async (t) => {
  t.equal(installed, 3);
});

t.test('the controller accepts every example object', async (t) => {
  const dir = join(daemonsetDir, 'examples');
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml'))) {
    for (const { obj } of loadYamlFile(join(dir, f))) {
      t.doesNotThrow(() => store.validate(obj as unknown as KubeObject), `${f}: ${obj.kind} ${obj.metadata.name}`);
    }
  }
});

t.test('the controller refuses the malformed objects, naming the field', async (t) => {
  for (const [kind, what, patch] of MALFORMED) {
    const obj = patched(kind, patch) as unknown as KubeObject;
    t.throws(() => store.validate(obj), { code: 'WEFT_ERR_CONFIG' }, `${kind}: ${what}`);
  }
});
