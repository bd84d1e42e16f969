// Reads a sandbox spec (multi-document Kubernetes YAML) and validates all of it before anything is
// built: an unknown kind, a missing field, a duplicate name or a bad port is refused with one
// WeftConfigError naming the file, the object and the field. Node placement is checked later, by the
// planner, which knows how many nodes there are.
import { createHash } from 'node:crypto';
import { parseAllDocuments } from 'yaml';

import { WeftConfigError } from '../../common/errors.js';
import { MESH_NAMESPACE_ENABLED, MESH_NAMESPACE_LABEL } from '../../common/mesh.js';
import type { KubeObject } from '../../controller/sources/types.js';
import { describe, type Obj, Where } from './fields.js';
import type { ContainerSpec, NamespaceSpec, PodSpec, SandboxSpec, ServiceAccountSpec, ServicePortSpec, ServiceSpec } from './types.js';

/** API groups whose objects go to the controller unchanged (it validates them itself). */
export const PASSTHROUGH_GROUPS = ['weft.io', 'gateway.networking.k8s.io'];

const CORE_KINDS: Record<string, string> = {
  Namespace: 'v1',
  ServiceAccount: 'v1',
  Pod: 'v1',
  Service: 'v1',
  Deployment: 'apps/v1',
};

const MAX_REPLICAS = 250;

export function parseSpec(text: string, file: string): SandboxSpec {
  const docs = parseAllDocuments(text, { prettyErrors: true });
  const spec: SandboxSpec = { file, namespaces: [], serviceAccounts: [], pods: [], services: [], passthrough: [] };
  const seen = new Map<string, string>();
  const docList = Array.isArray(docs) ? docs : [docs];

  docList.forEach((doc, i) => {
    const at = `${file}: document ${i + 1}`;
    if (doc.errors.length > 0) throw new WeftConfigError(at, `is not valid YAML: ${doc.errors[0]!.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return; // an empty document (a trailing ---)
    if (typeof value !== 'object' || Array.isArray(value)) throw new WeftConfigError(at, `must be a Kubernetes object (a mapping), got ${describe(value)}`);
    const obj = value as Obj;
    const w0 = new Where(at);
    const apiVersion = w0.str(obj.apiVersion, 'apiVersion', true);
    const kind = w0.str(obj.kind, 'kind', true);
    const meta = w0.obj(obj.metadata, `${kind}.metadata`, true)!;
    const name = w0.str(meta.name, `${kind}.metadata.name`, true);
    const namespace = kind === 'Namespace' ? undefined : (w0.str(meta.namespace, `${kind} ${name}: metadata.namespace`, false) ?? 'default');
    const w = new Where(`${file}: ${kind} ${namespace ? `${namespace}/` : ''}${name}`);

    const group = apiVersion.includes('/') ? apiVersion.split('/')[0]! : '';
    const passthrough = PASSTHROUGH_GROUPS.some((g) => group === g || group.endsWith(`.${g}`));
    if (!passthrough) {
      const want = CORE_KINDS[kind];
      if (!want) {
        w.fail('kind', `unknown kind "${kind}" (apiVersion ${apiVersion}); the sandbox accepts ${Object.keys(CORE_KINDS).join(', ')} and ${PASSTHROUGH_GROUPS.join(' / ')} objects`);
      }
      if (apiVersion !== want) w.fail('apiVersion', `${kind} must be apiVersion ${want}, got "${apiVersion}"`);
    }

    const key = `${passthrough ? apiVersion.split('/')[0] + '/' : ''}${kind}/${namespace ?? ''}/${name}`;
    const prev = seen.get(key);
    if (prev) w.fail('metadata.name', `duplicate: ${kind} "${name}"${namespace ? ` in namespace "${namespace}"` : ''} is already defined in ${prev}`);
    seen.set(key, `document ${i + 1}`);

    if (passthrough) {
      w.subdomain(name, 'metadata.name');
      const copy = structuredClone(obj) as KubeObject;
      copy.metadata = { ...copy.metadata, namespace: namespace! };
      spec.passthrough.push(copy);
      return;
    }
    switch (kind) {
      case 'Namespace':
        spec.namespaces.push(parseNamespace(w, meta));
        break;
      case 'ServiceAccount':
        w.subdomain(name, 'metadata.name');
        w.label(namespace, 'metadata.namespace');
        spec.serviceAccounts.push({ namespace: namespace!, name, declared: true });
        break;
      case 'Pod':
        spec.pods.push(parsePod(w, meta, obj.spec, namespace!, 'spec'));
        break;
      case 'Deployment':
        spec.pods.push(...parseDeployment(w, meta, obj, namespace!));
        break;
      case 'Service':
        spec.services.push(parseService(w, meta, obj.spec, namespace!));
        break;
    }
  });

  crossCheck(spec);
  return spec;
}

function parseNamespace(w: Where, meta: Obj): NamespaceSpec {
  const name = w.label(meta.name, 'metadata.name');
  const labels = w.stringMap(meta.labels, 'metadata.labels');
  const mesh = labels[MESH_NAMESPACE_LABEL];
  if (mesh !== undefined && mesh !== MESH_NAMESPACE_ENABLED && mesh !== 'disabled') {
    w.fail(`metadata.labels.${MESH_NAMESPACE_LABEL}`, `must be "${MESH_NAMESPACE_ENABLED}" or "disabled", got "${mesh}"`);
  }
  const annotations = w.stringMap(meta.annotations, 'metadata.annotations');
  return { name, labels, annotations, meshed: mesh === MESH_NAMESPACE_ENABLED, declared: true };
}

function parseContainer(w: Where, v: unknown, field: string): ContainerSpec {
  const c = w.obj(v, field, true)!;
  const name = w.label(c.name, `${field}.name`);
  const command = w.strings(c.command, `${field}.command`);
  const args = w.strings(c.args, `${field}.args`) ?? [];
  if (!command || command.length === 0) {
    w.fail(`${field}.command`, 'is required: the sandbox has no container images, so each container names the program it runs (e.g. command: [node, demo/http-server.mjs])');
  }
  const env: Record<string, string> = {};
  (w.arr(c.env, `${field}.env`, false) ?? []).forEach((e, i) => {
    const f = `${field}.env[${i}]`;
    const eo = w.obj(e, f, true)!;
    const n = w.str(eo.name, `${f}.name`, true);
    if (eo.valueFrom !== undefined) w.fail(`${f}.valueFrom`, 'is not supported in the sandbox; use value');
    const val = eo.value;
    if (val !== undefined && typeof val !== 'string') w.fail(`${f}.value`, `must be a string (quote numbers), got ${describe(val)}`);
    env[n] = val ?? '';
  });
  const ports = (w.arr(c.ports, `${field}.ports`, false) ?? []).map((p, i) => {
    const f = `${field}.ports[${i}]`;
    const po = w.obj(p, f, true)!;
    const portName = po.name === undefined ? undefined : w.label(po.name, `${f}.name`, 15);
    return { ...(portName ? { name: portName } : {}), containerPort: w.port(po.containerPort, `${f}.containerPort`, true)!, protocol: w.protocol(po.protocol, `${f}.protocol`) };
  });
  const workingDir = w.str(c.workingDir, `${field}.workingDir`, false);
  return { name, argv: [...command, ...args], env, ports, ...(workingDir ? { workingDir } : {}) };
}

function parsePod(w: Where, meta: Obj, specV: unknown, namespace: string, field: string, nameOverride?: string): PodSpec {
  const name = nameOverride ?? w.subdomain(meta.name, 'metadata.name');
  w.label(namespace, 'metadata.namespace');
  const spec = w.obj(specV, field, true)!;
  if (w.bool(spec.hostNetwork, `${field}.hostNetwork`)) w.fail(`${field}.hostNetwork`, 'host-network pods are not supported in the sandbox (the node agents are the only host-network processes)');
  const containers = w.arr(spec.containers, `${field}.containers`, true)!;
  if (containers.length === 0) w.fail(`${field}.containers`, 'must list at least one container');
  const parsed = containers.map((c, i) => parseContainer(w, c, `${field}.containers[${i}]`));
  const names = new Set<string>();
  parsed.forEach((c, i) => {
    if (names.has(c.name)) w.fail(`${field}.containers[${i}].name`, `duplicate container name "${c.name}"`);
    names.add(c.name);
  });
  if (spec.initContainers !== undefined) w.fail(`${field}.initContainers`, 'are not supported in the sandbox');
  const sa = spec.serviceAccountName === undefined ? 'default' : w.subdomain(spec.serviceAccountName, `${field}.serviceAccountName`);
  const nodeName = w.str(spec.nodeName, `${field}.nodeName`, false);
  return {
    namespace,
    name,
    labels: w.stringMap(meta.labels, 'metadata.labels'),
    annotations: w.stringMap(meta.annotations, 'metadata.annotations'),
    serviceAccount: sa,
    containers: parsed,
    origin: w.what,
    ...(nodeName ? { nodeName } : {}),
  };
}

function parseDeployment(w: Where, meta: Obj, obj: Obj, namespace: string): PodSpec[] {
  const name = w.subdomain(meta.name, 'metadata.name');
  const spec = w.obj(obj.spec, 'spec', true)!;
  const replicas = w.int(spec.replicas, 'spec.replicas', 0, MAX_REPLICAS) ?? 1;
  const selector = w.obj(spec.selector, 'spec.selector', true)!;
  if (selector.matchExpressions !== undefined) w.fail('spec.selector.matchExpressions', 'is not supported in the sandbox; use matchLabels');
  const matchLabels = w.stringMap(selector.matchLabels, 'spec.selector.matchLabels');
  if (Object.keys(matchLabels).length === 0) w.fail('spec.selector.matchLabels', 'is required and must not be empty');
  const template = w.obj(spec.template, 'spec.template', true)!;
  const tmeta = w.obj(template.metadata, 'spec.template.metadata', true)!;
  const tlabels = w.stringMap(tmeta.labels, 'spec.template.metadata.labels');
  for (const [k, v] of Object.entries(matchLabels)) {
    if (tlabels[k] !== v) w.fail(`spec.template.metadata.labels.${k}`, `must be "${v}" to match spec.selector.matchLabels (a Deployment's selector must select its own pods)`);
  }
  const hash = templateHash(template);
  const replicaSet = `${name}-${hash}`;
  const pods: PodSpec[] = [];
  for (let i = 0; i < replicas; i++) {
    const podName = `${replicaSet}-${suffix(`${namespace}/${name}/${i}`)}`;
    const pod = parsePod(w, { ...tmeta, name: podName }, template.spec, namespace, 'spec.template.spec', podName);
    pod.labels = { ...pod.labels, 'pod-template-hash': hash };
    pod.owner = { deployment: name, replicaSet, templateHash: hash };
    pods.push(pod);
  }
  return pods;
}

function parseService(w: Where, meta: Obj, specV: unknown, namespace: string): ServiceSpec {
  const name = w.label(meta.name, 'metadata.name');
  w.label(namespace, 'metadata.namespace');
  const spec = w.obj(specV, 'spec', true)!;
  const type = spec.type ?? 'ClusterIP';
  if (type !== 'ClusterIP') w.fail('spec.type', `only ClusterIP services exist in the sandbox, got ${describe(type)}`);
  const selector = spec.selector === undefined ? undefined : w.stringMap(spec.selector, 'spec.selector');
  const clusterIP = w.str(spec.clusterIP, 'spec.clusterIP', false);
  const ports = w.arr(spec.ports, 'spec.ports', true)!;
  if (ports.length === 0) w.fail('spec.ports', 'must list at least one port');
  const parsed: ServicePortSpec[] = ports.map((p, i) => {
    const f = `spec.ports[${i}]`;
    const po = w.obj(p, f, true)!;
    const portName = po.name === undefined ? undefined : w.label(po.name, `${f}.name`);
    if (ports.length > 1 && !portName) w.fail(`${f}.name`, 'is required when a service has more than one port');
    const port = w.port(po.port, `${f}.port`, true)!;
    let targetPort: number | string = port;
    if (typeof po.targetPort === 'string') targetPort = /^\d+$/.test(po.targetPort) ? w.port(Number(po.targetPort), `${f}.targetPort`, true)! : w.label(po.targetPort, `${f}.targetPort`, 15);
    else if (po.targetPort !== undefined) targetPort = w.port(po.targetPort, `${f}.targetPort`, true)!;
    const appProtocol = w.str(po.appProtocol, `${f}.appProtocol`, false);
    return { ...(portName ? { name: portName } : {}), port, targetPort, protocol: w.protocol(po.protocol, `${f}.protocol`), ...(appProtocol ? { appProtocol } : {}) };
  });
  const dup = new Set<string>();
  parsed.forEach((p, i) => {
    const k = `${p.protocol}/${p.port}`;
    if (dup.has(k)) w.fail(`spec.ports[${i}].port`, `duplicate port ${p.port}/${p.protocol}`);
    dup.add(k);
    if (p.name) {
      if (dup.has(`name:${p.name}`)) w.fail(`spec.ports[${i}].name`, `duplicate port name "${p.name}"`);
      dup.add(`name:${p.name}`);
    }
  });
  return { namespace, name, ports: parsed, origin: w.what, ...(selector ? { selector } : {}), ...(clusterIP ? { clusterIP } : {}) };
}

/** References between objects: namespaces and service accounts exist, pod names are unique, named ports resolve. */
function crossCheck(spec: SandboxSpec): void {
  const namespaces = new Map(spec.namespaces.map((n) => [n.name, n]));
  if (!namespaces.has('default')) {
    const def: NamespaceSpec = { name: 'default', labels: {}, annotations: {}, meshed: false, declared: false };
    spec.namespaces.unshift(def);
    namespaces.set('default', def);
  }
  const sas = new Set(spec.serviceAccounts.map((s) => `${s.namespace}/${s.name}`));
  const check = (ns: string, origin: string, field: string) => {
    if (!namespaces.has(ns)) throw new WeftConfigError(`${origin}: ${field}`, `namespace "${ns}" is not declared; add a Namespace object (label ${MESH_NAMESPACE_LABEL}: ${MESH_NAMESPACE_ENABLED} to put it in the mesh)`);
  };
  for (const sa of spec.serviceAccounts) check(sa.namespace, `${spec.file}: ServiceAccount ${sa.namespace}/${sa.name}`, 'metadata.namespace');
  for (const ns of namespaces.keys()) {
    if (!sas.has(`${ns}/default`)) {
      const implicit: ServiceAccountSpec = { namespace: ns, name: 'default', declared: false };
      spec.serviceAccounts.push(implicit);
      sas.add(`${ns}/default`);
    }
  }
  const podNames = new Map<string, string>();
  for (const p of spec.pods) {
    check(p.namespace, p.origin, 'metadata.namespace');
    const key = `${p.namespace}/${p.name}`;
    const prev = podNames.get(key);
    if (prev) throw new WeftConfigError(`${p.origin}: metadata.name`, `duplicate: pod "${key}" is also created by ${prev}`);
    podNames.set(key, p.origin);
    if (!sas.has(`${p.namespace}/${p.serviceAccount}`)) {
      throw new WeftConfigError(`${p.origin}: spec.serviceAccountName`, `service account "${p.serviceAccount}" does not exist in namespace "${p.namespace}"; add a ServiceAccount object`);
    }
  }
  for (const s of spec.services) {
    check(s.namespace, s.origin, 'metadata.namespace');
    const selected = s.selector ? spec.pods.filter((p) => p.namespace === s.namespace && matches(s.selector!, p.labels)) : [];
    s.ports.forEach((port, i) => {
      if (typeof port.targetPort !== 'string' || selected.length === 0) return;
      const named = port.targetPort;
      if (!selected.some((p) => p.containers.some((c) => c.ports.some((cp) => cp.name === named)))) {
        throw new WeftConfigError(`${s.origin}: spec.ports[${i}].targetPort`, `no selected pod has a container port named "${named}"`);
      }
    });
  }
  for (const o of spec.passthrough) check(o.metadata.namespace!, `${spec.file}: ${o.kind} ${o.metadata.namespace}/${o.metadata.name}`, 'metadata.namespace');
}

export function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  const keys = Object.keys(selector);
  return keys.length > 0 && keys.every((k) => labels[k] === selector[k]);
}

// Kubernetes' "safe" alphabet for generated names (no vowels, no look-alikes).
const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function encode(seed: string, length: number): string {
  const digest = createHash('sha256').update(seed).digest();
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[digest[i]! % ALPHABET.length];
  return out;
}

/** A stable pod-template-hash: the same template gives the same ReplicaSet name. */
function templateHash(template: Obj): string {
  return encode(JSON.stringify(template), 10);
}

function suffix(seed: string): string {
  return encode(seed, 5);
}
