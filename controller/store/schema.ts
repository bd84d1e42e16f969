// A validator for the OpenAPI v3 subset Kubernetes structural schemas use (CRD `openAPIV3Schema`): type,
// properties, required, additionalProperties, items, enum, minimum/maximum, minLength/maxLength, pattern,
// minItems/maxItems, x-kubernetes-int-or-string, x-kubernetes-preserve-unknown-fields. It returns the
// first problem with the path of the field, so an error names exactly what to fix.
import { isIP } from 'node:net';

export interface Schema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  format?: string;
  description?: string;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  [k: string]: unknown;
}

export interface SchemaProblem {
  /** dotted path, e.g. spec.rules[0].backendRefs[1].port */
  path: string;
  message: string;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);
const patternCache = new Map<string, RegExp>();

export function validateSchema(value: unknown, schema: Schema, path = ''): SchemaProblem | undefined {
  const t = typeOf(value);
  if (schema['x-kubernetes-int-or-string']) {
    if (t !== 'integer' && t !== 'string') return { path, message: `must be an integer or a string (got ${t})` };
  } else if (schema.type) {
    const ok = schema.type === t || (schema.type === 'number' && t === 'integer');
    if (!ok) return { path, message: `must be ${schema.type === 'integer' || schema.type === 'array' || schema.type === 'object' ? 'an' : 'a'} ${schema.type} (got ${t === 'undefined' ? 'nothing' : t})` };
  }
  if (schema.enum && !schema.enum.some((e) => e === value)) {
    return { path, message: `must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')} (got ${JSON.stringify(value)})` };
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) return { path, message: `must be >= ${schema.minimum} (got ${value})` };
    if (schema.maximum !== undefined && value > schema.maximum) return { path, message: `must be <= ${schema.maximum} (got ${value})` };
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) return { path, message: `must be at least ${schema.minLength} characters` };
    if (schema.maxLength !== undefined && value.length > schema.maxLength) return { path, message: `must be at most ${schema.maxLength} characters` };
    if (schema.format === 'ip' && isIP(value) === 0) return { path, message: `must be an IP address (got ${JSON.stringify(value)})` };
    if (schema.pattern) {
      let re = patternCache.get(schema.pattern);
      if (!re) patternCache.set(schema.pattern, (re = new RegExp(schema.pattern, 'u')));
      if (!re.test(value)) return { path, message: `must match ${schema.pattern} (got ${JSON.stringify(value)})` };
    }
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) return { path, message: `must have at least ${schema.minItems} item(s)` };
    if (schema.maxItems !== undefined && value.length > schema.maxItems) return { path, message: `must have at most ${schema.maxItems} item(s)` };
    if (schema.items) {
      for (let i = 0; i < value.length; i++) {
        const p = validateSchema(value[i], schema.items, `${path}[${i}]`);
        if (p) return p;
      }
    }
  }
  if (t === 'object') {
    const obj = value as Record<string, unknown>;
    for (const r of schema.required ?? []) {
      if (obj[r] === undefined || obj[r] === null) return { path: join(path, r), message: 'is required' };
    }
    const props = schema.properties ?? {};
    for (const [k, v] of Object.entries(obj)) {
      if (v === undefined) continue;
      const sub = props[k];
      if (sub) {
        const p = validateSchema(v, sub, join(path, k));
        if (p) return p;
      } else if (typeof schema.additionalProperties === 'object') {
        const p = validateSchema(v, schema.additionalProperties, join(path, k));
        if (p) return p;
      } else if (schema.additionalProperties === false || (schema.properties && !schema['x-kubernetes-preserve-unknown-fields'] && schema.additionalProperties === undefined && STRICT_UNKNOWN)) {
        return { path: join(path, k), message: 'is not a known field' };
      }
    }
  }
  return undefined;
}

/**
 * Kubernetes structural schemas prune unknown fields silently; we refuse them instead, as
 * `kubectl apply --validate=strict` does, so a typo (`mtsl:`) is an error rather than a silent no-op.
 */
const STRICT_UNKNOWN = true;
