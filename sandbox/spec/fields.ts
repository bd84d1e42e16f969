// Typed reads of untyped YAML values. Every failure is a WeftConfigError naming the object and the field
// path, so a bad spec reads like "demo.yaml: Pod demo/web: spec.containers[0].command: must be ...".
import { WeftConfigError } from '../../common/errors.js';

export type Obj = Record<string, unknown>;

/** Names one object in one file, for messages. */
export class Where {
  constructor(readonly what: string) {}

  fail(field: string, message: string): never {
    throw new WeftConfigError(`${this.what}: ${field}`, message);
  }

  obj(v: unknown, field: string, required: boolean): Obj | undefined {
    if (v === undefined || v === null) {
      if (required) this.fail(field, 'is required');
      return undefined;
    }
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(field, `must be a mapping, got ${describe(v)}`);
    return v as Obj;
  }

  arr(v: unknown, field: string, required: boolean): unknown[] | undefined {
    if (v === undefined || v === null) {
      if (required) this.fail(field, 'is required');
      return undefined;
    }
    if (!Array.isArray(v)) this.fail(field, `must be a list, got ${describe(v)}`);
    return v;
  }

  str(v: unknown, field: string, required: true): string;
  str(v: unknown, field: string, required: false): string | undefined;
  str(v: unknown, field: string, required: boolean): string | undefined {
    if (v === undefined || v === null) {
      if (required) this.fail(field, 'is required');
      return undefined;
    }
    if (typeof v !== 'string' || v === '') this.fail(field, `must be a non-empty string, got ${describe(v)}`);
    return v;
  }

  int(v: unknown, field: string, min: number, max: number): number | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(field, `must be an integer from ${min} to ${max}, got ${describe(v)}`);
    return v;
  }

  port(v: unknown, field: string, required: boolean): number | undefined {
    if ((v === undefined || v === null) && required) this.fail(field, 'is required');
    return this.int(v, field, 1, 65535);
  }

  bool(v: unknown, field: string): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') this.fail(field, `must be true or false, got ${describe(v)}`);
    return v;
  }

  /** a map of string to string (labels, selectors, annotations) */
  stringMap(v: unknown, field: string): Record<string, string> {
    const o = this.obj(v, field, false);
    if (!o) return {};
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(o)) {
      if (typeof val !== 'string') this.fail(`${field}.${k}`, `must be a string (quote numbers and booleans), got ${describe(val)}`);
      out[k] = val;
    }
    return out;
  }

  /** a list of strings (command, args) */
  strings(v: unknown, field: string): string[] | undefined {
    const a = this.arr(v, field, false);
    if (!a) return undefined;
    return a.map((x, i) => {
      if (typeof x !== 'string') this.fail(`${field}[${i}]`, `must be a string (quote numbers), got ${describe(x)}`);
      return x;
    });
  }

  /** DNS-1123 label: namespaces, services, container and port names */
  label(v: unknown, field: string, max = 63): string {
    const s = this.str(v, field, true);
    if (s.length > max || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(s)) {
      this.fail(field, `"${s}" is not a valid name: lower-case letters, digits and '-', starting and ending with a letter or digit, at most ${max} characters`);
    }
    return s;
  }

  /** DNS-1123 subdomain: pods, service accounts, deployments */
  subdomain(v: unknown, field: string): string {
    const s = this.str(v, field, true);
    if (s.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(s)) {
      this.fail(field, `"${s}" is not a valid name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit`);
    }
    return s;
  }

  protocol(v: unknown, field: string): 'TCP' | 'UDP' | 'SCTP' {
    if (v === undefined || v === null) return 'TCP';
    if (v !== 'TCP' && v !== 'UDP' && v !== 'SCTP') this.fail(field, `must be TCP, UDP or SCTP, got ${describe(v)}`);
    return v;
  }
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v);
  return `${typeof v} ${String(v)}`;
}
