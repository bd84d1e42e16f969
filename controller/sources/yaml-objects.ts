// Kubernetes-shaped objects from YAML text: multi-document files, `kind: List`, JSON. A syntax error names
// the file, the document and the line; nothing from a file that does not parse is used.
import { parseAllDocuments } from 'yaml';

import { WeftConfigError } from '../../common/errors.js';
import type { KubeObject } from './types.js';

export function parseObjects(text: string, origin: string): KubeObject[] {
  const out: KubeObject[] = [];
  const docs = parseAllDocuments(text, { prettyErrors: true });
  let index = 0;
  for (const doc of docs) {
    index++;
    if (doc.errors.length > 0) {
      const err = doc.errors[0]!;
      const line = err.linePos?.[0]?.line;
      throw new WeftConfigError(`${origin}, document ${index}${line ? ` (line ${line})` : ''}`, `is not valid YAML: ${err.message.split('\n')[0]}`);
    }
    let value: unknown;
    try {
      // toJS resolves aliases: an alias to no anchor, or too many of them (the "billion laughs" guard),
      // is found only here, and the yaml library throws a plain ReferenceError for it
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      throw new WeftConfigError(`${origin}, document ${index}`, `is not valid YAML: ${(e as Error).message.split('\n')[0]}`, { cause: e });
    }
    if (value === null || value === undefined) continue; // empty document (a trailing ---)
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw new WeftConfigError(`${origin}, document ${index}`, 'must be a mapping with apiVersion, kind and metadata');
    }
    const obj = value as KubeObject & { items?: unknown };
    if (obj.kind === 'List' || (typeof obj.kind === 'string' && obj.kind.endsWith('List') && Array.isArray(obj.items))) {
      if (!Array.isArray(obj.items)) throw new WeftConfigError(`${origin}, document ${index}, field items`, 'must be a list of objects');
      for (const item of obj.items) out.push(item as KubeObject);
      continue;
    }
    out.push(obj);
  }
  return out;
}
