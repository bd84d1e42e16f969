// The controller's own validation, run on everything the sandbox will hand it before anything is built:
// a Weft policy or HTTPRoute in the spec that the controller would refuse fails `up` at once, naming the
// object and field, instead of being dropped from the mesh at run time.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { WeftConfigError } from '../common/errors.js';
import { silentLogger } from '../common/log.js';
import { loadCrdSchemas } from '../controller/store/crd-schemas.js';
import { BUILTIN_KINDS, KindRegistry } from '../controller/store/kinds.js';
import { ObjectStore } from '../controller/store/object-store.js';
import { clusterObjects } from './kube.js';
import type { Plan } from './plan.js';

/** daemonset/crds of this installation (dist/sandbox/validate.js -> ../../daemonset/crds). */
const CRD_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'daemonset', 'crds');

export function validateForController(plan: Plan): void {
  const kinds = new KindRegistry(BUILTIN_KINDS);
  loadCrdSchemas(CRD_DIR, kinds, silentLogger);
  const store = new ObjectStore(kinds, silentLogger);
  for (const objs of Object.values(clusterObjects(plan))) {
    for (const o of objs) {
      try {
        store.validate(o);
      } catch (e) {
        if (e instanceof WeftConfigError) throw new WeftConfigError(`${plan.specFile}: ${e.where}`, e.message.slice(e.where.length + 2), { cause: e });
        throw e;
      }
    }
  }
}
