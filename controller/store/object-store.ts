// The controller's object store: every Kubernetes-shaped object the sources feed it, validated on the way
// in. An invalid object is refused whole (WeftConfigError naming object and field) and the stored version,
// if any, stays: the last good config stays in force. Listeners hear about every change (the translator
// debounces them into config pushes).
import { WeftConfigError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { silentLogger } from '../../common/log.js';
import type { ServiceAccountPlacement } from '../ca/csr-authorizer.js';
import type { KubeObject, ObjectRef, ObjectSink } from '../sources/types.js';
import { groupOf, type KindInfo, type KindRegistry } from './kinds.js';
import { validateSchema } from './schema.js';
import { SEMANTIC_CHECKS } from './semantics.js';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

export interface StoredObject {
  obj: KubeObject;
  source: string;
}

export function objectKey(apiVersion: string, kind: string, namespace: string | undefined, name: string): string {
  return `${groupOf(apiVersion)}/${kind}/${namespace ?? ''}/${name}`;
}

/** "Pod default/web-1" or "Namespace shop": how messages name an object */
export function describeObject(o: { kind?: unknown; metadata?: { namespace?: unknown; name?: unknown } }): string {
  const kind = typeof o.kind === 'string' && o.kind ? o.kind : 'object';
  const name = typeof o.metadata?.name === 'string' && o.metadata.name ? o.metadata.name : '<no name>';
  const ns = typeof o.metadata?.namespace === 'string' && o.metadata.namespace ? `${o.metadata.namespace}/` : '';
  return `${kind} ${ns}${name}`;
}

export type ChangeListener = (change: { key: string; kind: string; type: 'upsert' | 'delete' }) => void;

export class ObjectStore implements ObjectSink, ServiceAccountPlacement {
  private readonly objects = new Map<string, StoredObject>();
  /** group/kind -> keys, so the translator lists one kind without scanning everything */
  private readonly byKind = new Map<string, Set<string>>();
  private readonly listeners = new Set<ChangeListener>();
  private readonly log: Logger;
  /** bumped on every change; the translator compares it to skip work */
  revision = 0;

  constructor(
    private readonly kinds: KindRegistry,
    logger?: Logger,
  ) {
    this.log = logger ?? silentLogger;
  }

  /** Checks one object; returns it normalised (namespace defaulted). Throws WeftConfigError, changes nothing. */
  validate(input: KubeObject): KubeObject {
    const raw = input as unknown as Record<string, unknown>;
    // a List item or a document may be anything: check the shape before naming the object by its fields
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new WeftConfigError('object', 'must be a mapping with apiVersion, kind and metadata');
    const what = describeObject(input);
    if (typeof raw.apiVersion !== 'string' || !raw.apiVersion) throw new WeftConfigError(`${what}, field apiVersion`, 'is required');
    if (typeof raw.kind !== 'string' || !raw.kind) throw new WeftConfigError(`${what}, field kind`, 'is required');
    const info = this.kinds.get(raw.apiVersion, raw.kind);
    if (!info) throw new WeftConfigError(`${what}, field apiVersion/kind`, `"${raw.apiVersion}" ${raw.kind} is not a kind Weft reads; supported: ${this.kinds.describe()}`);
    const md = raw.metadata as Record<string, unknown> | undefined;
    if (!md || typeof md !== 'object' || Array.isArray(md)) throw new WeftConfigError(`${what}, field metadata`, 'is required (a mapping with at least name)');
    if (typeof md.name !== 'string' || !md.name) throw new WeftConfigError(`${what}, field metadata.name`, 'is required');
    if (md.name.length > 253 || !DNS_SUBDOMAIN.test(md.name)) throw new WeftConfigError(`${what}, field metadata.name`, `"${md.name}" must be lowercase letters, digits, '-' and '.', starting and ending alphanumeric`);
    let namespace: string | undefined;
    if (info.namespaced) {
      if (md.namespace !== undefined && (typeof md.namespace !== 'string' || md.namespace.length > 63 || !DNS_LABEL.test(md.namespace))) {
        throw new WeftConfigError(`${what}, field metadata.namespace`, `${JSON.stringify(md.namespace)} must be a DNS label (lowercase letters, digits, '-')`);
      }
      namespace = (md.namespace as string | undefined) || 'default';
    }
    for (const field of ['labels', 'annotations'] as const) {
      const m = md[field];
      if (m === undefined) continue;
      if (m === null || typeof m !== 'object' || Array.isArray(m)) throw new WeftConfigError(`${what}, field metadata.${field}`, 'must be a mapping of strings');
      for (const [k, v] of Object.entries(m)) {
        if (typeof v !== 'string') throw new WeftConfigError(`${what}, field metadata.${field}.${k}`, `must be a string (got ${typeof v}); quote it in YAML`);
        if (field === 'labels' && (!LABEL_KEY.test(k) || k.length > 316)) throw new WeftConfigError(`${what}, field metadata.labels`, `"${k}" is not a valid label key`);
        if (field === 'labels' && (!LABEL_VALUE.test(v) || v.length > 63)) throw new WeftConfigError(`${what}, field metadata.labels.${k}`, `"${v}" is not a valid label value (at most 63 alphanumerics, '-', '_', '.')`);
      }
    }
    const obj: KubeObject = { ...input, metadata: { ...input.metadata, ...(namespace !== undefined ? { namespace } : {}) } };
    if (!info.namespaced) delete obj.metadata.namespace;
    const body: Record<string, unknown> = { ...obj };
    delete body.metadata;
    const problem = validateSchema(body, info.schema);
    if (problem) throw new WeftConfigError(`${describeObject(obj)}, field ${problem.path || '(object)'}`, problem.message);
    this.checkSemantics(obj, info);
    return obj;
  }

  upsert(input: KubeObject, source: string): void {
    const obj = this.validate(input);
    const key = objectKey(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name);
    const prev = this.objects.get(key);
    if (prev && JSON.stringify(prev.obj) === JSON.stringify(obj)) {
      prev.source = source;
      return;
    }
    this.put(key, obj, source);
    this.emit({ key, kind: obj.kind, type: 'upsert' });
  }

  delete(ref: ObjectRef, _source: string): void {
    const info = this.kinds.get(ref.apiVersion, ref.kind);
    const ns = info && !info.namespaced ? undefined : ref.namespace || 'default';
    const key = objectKey(ref.apiVersion, ref.kind, ns, ref.name);
    if (!this.remove(key)) return;
    this.emit({ key, kind: ref.kind, type: 'delete' });
  }

  replaceAll(kinds: string[], objs: KubeObject[], source: string): { refused: { ref: ObjectRef; error: Error }[] } {
    const refused: { ref: ObjectRef; error: Error }[] = [];
    const keep = new Set<string>();
    const valid: KubeObject[] = [];
    for (const o of objs) {
      // Read as untrusted: a YAML document may lack apiVersion or metadata, or be a List item that is not a
      // mapping at all; validate() refuses it by name, and the key must not throw on the way there.
      const raw = (o !== null && typeof o === 'object' ? o : {}) as { apiVersion?: unknown; kind?: unknown; metadata?: { namespace?: unknown; name?: unknown } };
      const md = raw.metadata !== null && typeof raw.metadata === 'object' ? raw.metadata : undefined;
      const apiVersion = String(raw.apiVersion);
      const kind = String(raw.kind);
      const ns = (typeof md?.namespace === 'string' && md.namespace) || (this.kinds.get(apiVersion, kind)?.namespaced === false ? undefined : 'default');
      const key = objectKey(apiVersion, kind, ns, String(md?.name ?? ''));
      try {
        valid.push(this.validate(o));
        keep.add(key);
      } catch (e) {
        // the last good version (if any) stays
        keep.add(key);
        refused.push({ ref: { apiVersion, kind, ...(ns ? { namespace: ns } : {}), name: String(md?.name ?? '') }, error: e as Error });
        this.log.warn('refused object', { source, error: (e as Error).message });
      }
    }
    const kindSet = new Set(kinds);
    const changes: { key: string; kind: string; type: 'upsert' | 'delete' }[] = [];
    for (const [key, so] of this.objects) {
      if (so.source !== source || !(kindSet.has(so.obj.kind) || kindSet.has(`${groupOf(so.obj.apiVersion)}/${so.obj.kind}`))) continue;
      if (keep.has(key)) continue;
      this.remove(key);
      changes.push({ key, kind: so.obj.kind, type: 'delete' });
    }
    for (const obj of valid) {
      const key = objectKey(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name);
      const prev = this.objects.get(key);
      if (prev && JSON.stringify(prev.obj) === JSON.stringify(obj)) {
        prev.source = source;
        continue;
      }
      this.put(key, obj, source);
      changes.push({ key, kind: obj.kind, type: 'upsert' });
    }
    for (const c of changes) this.emit(c);
    return { refused };
  }

  /** every stored object of a kind (by kind name, any group version accepted for it) */
  list(kind: string): KubeObject[] {
    const out: KubeObject[] = [];
    for (const [gk, keys] of this.byKind) {
      if (gk.slice(gk.indexOf('/') + 1) !== kind) continue;
      for (const k of keys) out.push(this.objects.get(k)!.obj);
    }
    return out;
  }

  get(apiVersion: string, kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.objects.get(objectKey(apiVersion, kind, namespace, name))?.obj;
  }

  /** one object by the key change events carry (objectKey); the incremental translator reads changes by it */
  getByKey(key: string): KubeObject | undefined {
    return this.objects.get(key)?.obj;
  }

  size(): number {
    return this.objects.size;
  }

  onChange(fn: ChangeListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  serviceAccountsOnNode(node: string): ReadonlySet<string> {
    const out = new Set<string>();
    for (const pod of this.list('Pod')) {
      const spec = pod.spec as { nodeName?: string; serviceAccountName?: string; serviceAccount?: string } | undefined;
      const phase = (pod.status as { phase?: string } | undefined)?.phase;
      if (spec?.nodeName !== node || phase === 'Succeeded' || phase === 'Failed') continue;
      out.add(`${pod.metadata.namespace}/${spec.serviceAccountName || spec.serviceAccount || 'default'}`);
    }
    return out;
  }

  private checkSemantics(obj: KubeObject, info: KindInfo): void {
    const where = describeObject(obj);
    for (const check of SEMANTIC_CHECKS[info.kind] ?? []) check(obj, where);
    if (info.kind === 'EndpointSlice' && !obj.metadata.labels?.['kubernetes.io/service-name']) {
      throw new WeftConfigError(`${where}, field metadata.labels.kubernetes.io/service-name`, 'is required: it names the Service this slice belongs to');
    }
    if (info.kind === 'Service') {
      const spec = obj.spec as { clusterIP?: string; clusterIPs?: string[] };
      if (spec.clusterIP && spec.clusterIPs && spec.clusterIPs.length > 0 && spec.clusterIPs[0] !== spec.clusterIP) {
        throw new WeftConfigError(`${where}, field spec.clusterIPs[0]`, `must equal spec.clusterIP ("${spec.clusterIP}")`);
      }
    }
  }

  private put(key: string, obj: KubeObject, source: string): void {
    this.objects.set(key, { obj, source });
    const gk = `${groupOf(obj.apiVersion)}/${obj.kind}`;
    let set = this.byKind.get(gk);
    if (!set) this.byKind.set(gk, (set = new Set()));
    set.add(key);
    this.revision++;
  }

  private remove(key: string): boolean {
    const so = this.objects.get(key);
    if (!so) return false;
    this.objects.delete(key);
    this.byKind.get(`${groupOf(so.obj.apiVersion)}/${so.obj.kind}`)?.delete(key);
    this.revision++;
    return true;
  }

  private emit(change: { key: string; kind: string; type: 'upsert' | 'delete' }): void {
    for (const fn of this.listeners) {
      try {
        fn(change);
      } catch (e) {
        this.log.error('store listener failed', { err: e });
      }
    }
  }
}
