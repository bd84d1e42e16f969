// Hand-written protobuf encoding of the config stream's messages (proto/weft/v1/mesh.proto), piece by
// piece. Protobuf concatenation is merging: a ConfigUpdate made of a header followed by any number of
// `upsert_services: {...}` fields is the same message as one built whole, so the controller encodes each
// Workload, Service, NodeInfo and PolicyObject once in its life (as its field inside a ConfigUpdate) and
// every update, to every agent, is a header plus already encoded pieces (controller/grpc/update-encoder.ts).
// It is also some 10x faster than protobufjs' reflection encoder for these shapes, which matters for a
// 10 MB snapshot. test/controller/wire-encode.test.ts checks it against proto-loader's decoder.
import type { CompiledPolicy } from '../common/policy.js';
import type { NodeInfo, Service, Workload } from '../common/mesh.js';
import { telemetryLabels } from '../common/telemetry-labels.js';

/** ConfigUpdate field numbers (mesh.proto) */
export const UPDATE_FIELD = {
  version: 1,
  snapshot: 2,
  baseVersion: 3,
  trustDomain: 4,
  trustBundlePem: 5,
  upsertNodes: 6,
  removeNodes: 7,
  upsertWorkloads: 8,
  removeWorkloads: 9,
  upsertServices: 10,
  removeServices: 11,
  upsertPolicies: 12,
  removePolicies: 13,
  more: 14,
} as const;

class Writer {
  private buf = Buffer.allocUnsafe(256);
  private pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  varint(v: number): void {
    this.ensure(10);
    // int64 fields carry millisecond versions (> 2^32): no bitwise operators above 2^31
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  uint(field: number, v: number): void {
    if (!v) return; // proto3: zero is the default and not written
    if (v < 0) throw new RangeError(`field ${field}: negative value ${v} is not encoded here`);
    this.tag(field, 0);
    this.varint(v);
  }

  bool(field: number, v: boolean): void {
    if (!v) return;
    this.tag(field, 0);
    this.varint(1);
  }

  string(field: number, s: string | undefined): void {
    if (!s) return;
    const n = Buffer.byteLength(s);
    this.tag(field, 2);
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  /** a string in a repeated field: written even when empty (an element, not a default) */
  element(field: number, s: string): void {
    const n = Buffer.byteLength(s);
    this.tag(field, 2);
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  message(field: number, body: (w: Writer) => void): void {
    const inner = new Writer();
    body(inner);
    const bytes = inner.finish();
    this.tag(field, 2);
    this.varint(bytes.length);
    this.ensure(bytes.length);
    bytes.copy(this.buf, this.pos);
    this.pos += bytes.length;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

function writeWorkload(w: Writer, x: Workload, withLabels: boolean): void {
  w.string(1, x.uid);
  w.string(2, x.namespace);
  w.string(3, x.name);
  w.string(4, x.serviceAccount);
  w.string(5, x.node);
  for (const ip of x.ips) w.element(6, ip);
  // another node's workload: only the labels Istio's metrics read, for the peer labels of its requests
  for (const [k, v] of Object.entries(withLabels ? x.labels : telemetryLabels(x.labels))) {
    w.message(7, (e) => {
      e.element(1, k);
      e.element(2, v);
    });
  }
  w.bool(8, x.meshed);
  w.bool(9, x.hostNetwork);
  w.string(10, x.mtlsMode);
  w.string(11, x.workloadName);
  // port_mtls (PeerAuthentication portLevelMtls): map<string, string> entries, like labels
  for (const [k, v] of Object.entries(x.portMtls ?? {})) {
    w.message(12, (e) => {
      e.element(1, k);
      e.element(2, v);
    });
  }
  if (x.accessLog) w.string(13, x.accessLog);
  if (x.failMode) w.string(14, x.failMode);
}

function writeService(w: Writer, s: Service): void {
  w.string(1, s.namespace);
  w.string(2, s.name);
  for (const ip of s.clusterIPs) w.element(3, ip);
  for (const p of s.ports) {
    w.message(4, (m) => {
      m.string(1, p.name);
      m.uint(2, p.port);
      m.uint(3, p.targetPort);
      m.string(4, p.protocol);
      m.string(5, p.appProtocol);
    });
  }
  for (const e of s.endpoints) {
    w.message(5, (m) => {
      m.string(1, e.ip);
      m.string(2, e.node);
      m.string(3, e.workloadUid);
      m.bool(4, e.ready);
    });
  }
}

/** `upsert_workloads: {...}` as a ConfigUpdate fragment; only the telemetry labels for workloads on other nodes */
export function workloadPiece(x: Workload, withLabels: boolean): Buffer {
  const w = new Writer();
  w.message(UPDATE_FIELD.upsertWorkloads, (m) => writeWorkload(m, x, withLabels));
  return w.finish();
}

export function servicePiece(s: Service): Buffer {
  const w = new Writer();
  w.message(UPDATE_FIELD.upsertServices, (m) => writeService(m, s));
  return w.finish();
}

export function nodePiece(n: NodeInfo): Buffer {
  const w = new Writer();
  w.message(UPDATE_FIELD.upsertNodes, (m) => {
    m.string(1, n.name);
    m.string(2, n.ip);
  });
  return w.finish();
}

export function policyPiece(p: CompiledPolicy): Buffer {
  const w = new Writer();
  w.message(UPDATE_FIELD.upsertPolicies, (m) => {
    m.string(1, p.key);
    m.string(2, JSON.stringify(p));
  });
  return w.finish();
}

/** a removal (`remove_*` field is one of 7, 9, 11, 13) */
export function removalPiece(field: number, key: string): Buffer {
  const w = new Writer();
  w.element(field, key);
  return w.finish();
}

export interface UpdateHeader {
  version: number;
  snapshot: boolean;
  baseVersion: number;
  trustDomain: string;
  trustBundlePem: string;
  /** more chunks of this version follow; the agent applies the version after the last one */
  more: boolean;
}

export function headerPiece(h: UpdateHeader): Buffer {
  const w = new Writer();
  w.uint(UPDATE_FIELD.version, h.version);
  w.bool(UPDATE_FIELD.snapshot, h.snapshot);
  w.uint(UPDATE_FIELD.baseVersion, h.baseVersion);
  w.string(UPDATE_FIELD.trustDomain, h.trustDomain);
  w.string(UPDATE_FIELD.trustBundlePem, h.trustBundlePem);
  w.bool(UPDATE_FIELD.more, h.more);
  return w.finish();
}
