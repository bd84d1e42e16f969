// Reads CustomResourceDefinition manifests (daemonset/crds/*.yaml) and installs their openAPIV3Schema into
// the kind registry, so the controller refuses exactly what the cluster's API server would refuse.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

import type { Logger } from '../../common/log.js';
import type { KindRegistry } from './kinds.js';
import type { Schema } from './schema.js';

interface CrdDoc {
  kind?: string;
  spec?: {
    group?: string;
    names?: { kind?: string };
    scope?: string;
    versions?: { name?: string; served?: boolean; schema?: { openAPIV3Schema?: Schema } }[];
  };
}

/** Installs every CRD schema found in `dir`; returns how many kind versions it installed. Missing dir: 0. */
export function loadCrdSchemas(dir: string, kinds: KindRegistry, log: Logger): number {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'));
  } catch {
    return 0;
  }
  let n = 0;
  for (const f of files) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
      const crd = doc.toJS() as CrdDoc | null;
      if (!crd || crd.kind !== 'CustomResourceDefinition' || !crd.spec?.group || !crd.spec.names?.kind) continue;
      for (const v of crd.spec.versions ?? []) {
        const schema = v.schema?.openAPIV3Schema;
        if (!v.name || !schema || v.served === false) continue;
        // metadata is checked by the store for every kind; the rest of the object against the CRD's schema
        const props = { ...(schema.properties ?? {}) };
        delete props.metadata;
        props.apiVersion = { type: 'string' };
        props.kind = { type: 'string' };
        kinds.override(crd.spec.group, crd.spec.names.kind, `${crd.spec.group}/${v.name}`, {
          ...schema,
          properties: props,
          required: (schema.required ?? []).filter((r) => r !== 'metadata'),
        });
        n++;
      }
    }
  }
  log.info('loaded CRD schemas', { dir, kinds: n });
  return n;
}
