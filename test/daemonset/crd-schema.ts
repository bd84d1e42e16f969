// A CRD's openAPIV3Schema as a JSON Schema for ajv, with the API server's semantics where they differ:
// unknown fields are errors (kubectl's default strict field validation) unless x-kubernetes-preserve-
// unknown-fields; x-kubernetes-int-or-string is integer-or-string; nullable adds null. CEL rules
// (x-kubernetes-validations) need a CEL engine and are not evaluated here.
// Also the structural-schema rules the API server enforces on a CRD, so a schema that kubectl would refuse
// fails here first.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

type Schema = Record<string, unknown>;

export function toJsonSchema(s: Schema): Schema {
  const out: Schema = {};
  for (const [k, v] of Object.entries(s)) {
    if (k.startsWith('x-kubernetes-') || k === 'nullable' || k === 'description' || k === 'example') continue;
    if (k === 'properties') out.properties = Object.fromEntries(Object.entries(v as Record<string, Schema>).map(([p, ps]) => [p, toJsonSchema(ps)]));
    else if (k === 'items' || (k === 'additionalProperties' && typeof v === 'object')) out[k] = toJsonSchema(v as Schema);
    else if (k === 'allOf' || k === 'anyOf' || k === 'oneOf') out[k] = (v as Schema[]).map(toJsonSchema);
    else if (k === 'not') out[k] = toJsonSchema(v as Schema);
    else out[k] = v;
  }
  if (s['x-kubernetes-int-or-string'] === true) {
    delete out.type;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  if (s.nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  if (out.type === 'object' && s.properties && s.additionalProperties === undefined && s['x-kubernetes-preserve-unknown-fields'] !== true) {
    out.additionalProperties = false;
  }
  return out;
}

/** Violations of the structural-schema rules (k8s.io/apiextensions-apiserver), as "path: problem". */
export function structuralProblems(s: Schema, path = 'openAPIV3Schema', isRoot = true): string[] {
  const problems: string[] = [];
  const intOrString = s['x-kubernetes-int-or-string'] === true;
  const preserve = s['x-kubernetes-preserve-unknown-fields'] === true;
  if (s.type === undefined && !intOrString && !preserve) problems.push(`${path}: no type`);
  if (s.$ref !== undefined) problems.push(`${path}: $ref is not allowed`);
  if (s.properties && s.additionalProperties !== undefined) problems.push(`${path}: properties and additionalProperties are mutually exclusive`);
  if (s.type === 'array' && (s.items === undefined || Array.isArray(s.items))) problems.push(`${path}: an array needs one items schema`);
  if (s.type !== 'object' && (s.properties || s.additionalProperties)) problems.push(`${path}: properties on a non-object`);
  if (isRoot) {
    const meta = (s.properties as Record<string, Schema> | undefined)?.metadata;
    if (meta && Object.keys(meta).some((k) => k !== 'type')) problems.push(`${path}.properties.metadata: only type: object is allowed at the root`);
    if (s.type !== 'object') problems.push(`${path}: the root must be type: object`);
  }
  for (const [k, ps] of Object.entries((s.properties as Record<string, Schema>) ?? {})) problems.push(...structuralProblems(ps, `${path}.properties.${k}`, false));
  if (s.items && !Array.isArray(s.items)) problems.push(...structuralProblems(s.items as Schema, `${path}.items`, false));
  if (s.additionalProperties && typeof s.additionalProperties === 'object') problems.push(...structuralProblems(s.additionalProperties as Schema, `${path}.additionalProperties`, false));
  for (const k of ['allOf', 'anyOf', 'oneOf']) {
    for (const sub of (s[k] as Schema[]) ?? []) {
      // Inside value validations (allOf/anyOf/oneOf/not), structural schemas forbid type, default, description...
      for (const banned of ['type', 'default', 'description', 'nullable', 'additionalProperties']) if (sub[banned] !== undefined) problems.push(`${path}.${k}: ${banned} is not allowed inside ${k}`);
    }
  }
  return problems;
}

export function compileCrd(openAPIV3Schema: Schema): ValidateFunction {
  const ajv = new Ajv({ allErrors: true, strict: true });
  return ajv.compile(toJsonSchema(openAPIV3Schema));
}

export function errorsText(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`).join('; ');
}
