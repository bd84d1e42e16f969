// Reads CustomResourceDefinition manifests (daemonset/crds/*.yaml) and installs their openAPIV3Schema into
// the kind registry, so the controller refuses exactly what the cluster's API server would refuse.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
        kinds.override(crd.spec.group, crd.spec.names.kind, `${crd.spec.group}/${v.name}`, objectSchema(schema));
        n++;
      }
    }
  }
  log.info('loaded CRD schemas', { dir, kinds: n });
  return n;
}

/** metadata is checked by the store for every kind; the rest of the object against the CRD's schema. */
function objectSchema(schema: Schema): Schema {
  const props = { ...(schema.properties ?? {}) };
  delete props.metadata;
  props.apiVersion = { type: 'string' };
  props.kind = { type: 'string' };
  return { ...schema, properties: props, required: (schema.required ?? []).filter((r) => r !== 'metadata') };
}

/** daemonset/crds of this installation (dist/controller/store/ -> ../../../daemonset/crds); shipped in the image. */
export const CRD_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'daemonset', 'crds');

/**
 * The object schema of the storage version of the one CRD in `file` (under CRD_DIR), for a built-in kind
 * that must never disagree with its CRD: the kind registry's entry is derived from the manifest itself.
 */
export function crdObjectSchema(file: string): Schema {
  const path = join(CRD_DIR, file);
  const crd = parseAllDocuments(readFileSync(path, 'utf8'))
    .map((d) => d.toJS() as CrdDoc | null)
    .find((d) => d?.kind === 'CustomResourceDefinition');
  const v = crd?.spec?.versions?.find((x) => x.served !== false && x.schema?.openAPIV3Schema);
  if (!v?.schema?.openAPIV3Schema) throw new Error(`${path}: no CustomResourceDefinition with a served openAPIV3Schema`);
  return objectSchema(v.schema.openAPIV3Schema);
}
