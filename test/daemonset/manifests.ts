// Loads the install manifests the way kustomize does: the files kustomization.yaml lists, every YAML
// document in them, with the parsed AST kept for comment checks.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, parse, type Document } from 'yaml';

import { repoRoot } from '../helpers/paths.js';

export const daemonsetDir = join(repoRoot, 'daemonset');

export interface K8sDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: unknown;
}

export interface LoadedDoc {
  file: string;
  obj: K8sDoc;
  ast: Document.Parsed;
}

export function kustomization(): { resources: string[]; images?: { name: string; newTag?: string }[] } {
  return parse(readFileSync(join(daemonsetDir, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
}

export function loadYamlFile(path: string): LoadedDoc[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'));
  if (!Array.isArray(docs)) throw new Error(`${path}: not a YAML stream`);
  const out: LoadedDoc[] = [];
  for (const ast of docs) {
    if (ast.errors.length > 0) throw new Error(`${path}: ${ast.errors[0]!.message}`);
    const obj = ast.toJS() as K8sDoc | null;
    if (obj) out.push({ file: path, obj, ast });
  }
  return out;
}

export function loadInstall(): LoadedDoc[] {
  return kustomization().resources.flatMap((r) => loadYamlFile(join(daemonsetDir, r)));
}

export function find(docs: LoadedDoc[], kind: string, name: string): K8sDoc {
  const d = docs.find((x) => x.obj.kind === kind && x.obj.metadata.name === name);
  if (!d) throw new Error(`no ${kind} ${name} in the install manifests`);
  return d.obj;
}
