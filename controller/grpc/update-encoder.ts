// Builds the bytes of config updates from the translated mesh (MeshView), encoding each object once: every
// Workload, Service, NodeInfo and policy entry is encoded the first time it is sent and the bytes are kept
// for as long as the object lives (WeakMap by identity: the translator keeps unchanged objects), so a
// snapshot or delta for any agent is a header plus concatenated pieces (proto/wire-encode.ts). Deltas that
// are the same bytes for many agents (the same base, target and bundle, and no changed workload on the
// agent's node, which would carry its labels) are built once and shared.
//
// Updates are cut into chunks of about CHUNK_BYTES: the same version, snapshot flag and base in each, `more`
// on all but the last. The session writes one chunk at a time, the next after the previous left (gRPC flow
// control), so a 10 MB snapshot never holds the event loop or starves keepalive pings.
import { createHash } from 'node:crypto';

import type { Workload } from '../../common/mesh.js';
import { headerPiece, nodePiece, policyPiece, removalPiece, servicePiece, UPDATE_FIELD, workloadPiece } from '../../proto/wire-encode.js';
import type { ChangeSet } from '../translate/incremental.js';
import type { MeshView } from '../translate/publisher.js';

export const CHUNK_BYTES = 256 * 1024;

export interface EncodedUpdate {
  version: number;
  snapshot: boolean;
  /** number of chunks */
  count: number;
  /** total bytes of all chunks */
  bytes: number;
  /**
   * chunk i, assembled when asked: a snapshot is only references to cached pieces until it is written, so
   * 50 agents syncing at once do not hold 50 copies of a 10 MB snapshot
   */
  chunk(i: number): Buffer;
}

const digest = (s: string) => createHash('sha256').update(s).digest('base64url').slice(0, 16);

export class UpdateEncoder {
  private readonly withLabels = new WeakMap<Workload, Buffer>();
  private readonly withoutLabels = new WeakMap<Workload, Buffer>();
  private readonly pieces = new WeakMap<object, Buffer>();
  private readonly shared = new Map<string, EncodedUpdate | undefined>();
  /** encodings done (not served from a cache): tests check encode-once with it */
  encodings = 0;

  constructor(
    private readonly view: MeshView,
    private readonly chunkBytes = CHUNK_BYTES,
  ) {}

  /**
   * The update that takes `node` from `base` (the version and trust bundle it ACKed; undefined: it holds
   * nothing) to the newest version and `bundle`. A snapshot when there is no base or the base is too old
   * for the kept history; undefined when nothing the agent can see changed.
   */
  update(node: string, base: { version: number; bundle: string } | undefined, bundle: string): EncodedUpdate | undefined {
    const changes = base ? this.view.changesSince(base.version) : undefined;
    if (!base || !changes) return this.snapshot(node, bundle);
    const bundleChanged = bundle !== base.bundle;
    const empty = changes.nodes.size + changes.workloads.size + changes.services.size + changes.policies.size === 0;
    if (empty && !bundleChanged) return undefined;
    // the bytes differ per node only through the changed workloads on that node (sent with labels)
    const local: string[] = [];
    for (const uid of changes.workloads) if (this.view.workloads.get(uid)?.node === node) local.push(uid);
    const key = `${base.version}->${this.view.version}:${digest(bundle)}:${local.sort().join(',')}`;
    if (this.shared.has(key)) return this.shared.get(key);
    const u = this.delta(node, base.version, changes, bundle);
    if (this.shared.size >= 256) this.shared.delete(this.shared.keys().next().value!);
    this.shared.set(key, u);
    return u;
  }

  private workload(w: Workload, node: string): Buffer {
    const local = w.node === node;
    const cache = local ? this.withLabels : this.withoutLabels;
    let b = cache.get(w);
    if (!b) {
      this.encodings++;
      cache.set(w, (b = workloadPiece(w, local)));
    }
    return b;
  }

  private piece<T extends object>(o: T, encode: (o: T) => Buffer): Buffer {
    let b = this.pieces.get(o);
    if (!b) {
      this.encodings++;
      this.pieces.set(o, (b = encode(o)));
    }
    return b;
  }

  private snapshot(node: string, bundle: string): EncodedUpdate {
    const v = this.view;
    const pieces: Buffer[] = [];
    for (const n of v.nodes.values()) pieces.push(this.piece(n, nodePiece));
    for (const w of v.workloads.values()) pieces.push(this.workload(w, node));
    for (const s of v.services.values()) pieces.push(this.piece(s, servicePiece));
    for (const p of v.policies.values()) pieces.push(this.piece(p, policyPiece));
    return this.chunk(true, 0, bundle, pieces);
  }

  private delta(node: string, base: number, c: ChangeSet, bundle: string): EncodedUpdate {
    const v = this.view;
    const pieces: Buffer[] = [];
    for (const name of c.nodes) {
      const n = v.nodes.get(name);
      pieces.push(n ? this.piece(n, nodePiece) : removalPiece(UPDATE_FIELD.removeNodes, name));
    }
    for (const uid of c.workloads) {
      const w = v.workloads.get(uid);
      pieces.push(w ? this.workload(w, node) : removalPiece(UPDATE_FIELD.removeWorkloads, uid));
    }
    for (const key of c.services) {
      const s = v.services.get(key);
      pieces.push(s ? this.piece(s, servicePiece) : removalPiece(UPDATE_FIELD.removeServices, key));
    }
    for (const key of c.policies) {
      const p = v.policies.get(key);
      pieces.push(p ? this.piece(p, policyPiece) : removalPiece(UPDATE_FIELD.removePolicies, key));
    }
    return this.chunk(false, base, bundle, pieces);
  }

  private chunk(snapshot: boolean, baseVersion: number, bundle: string, pieces: Buffer[]): EncodedUpdate {
    const version = this.view.version;
    const trustDomain = this.view.trustDomain;
    const header = (more: boolean) => headerPiece({ version, snapshot, baseVersion, trustDomain, trustBundlePem: bundle, more });
    // chunk boundaries: [start, end) piece ranges of about chunkBytes
    const bounds: number[] = [0];
    let size = 0;
    let bytes = 0;
    for (let i = 0; i < pieces.length; i++) {
      const n = pieces[i]!.length;
      if (size > 0 && size + n > this.chunkBytes) {
        bounds.push(i);
        size = 0;
      }
      size += n;
      bytes += n;
    }
    bounds.push(pieces.length);
    const count = bounds.length - 1;
    bytes += (count - 1) * header(true).length + header(false).length;
    return {
      version,
      snapshot,
      count,
      bytes,
      chunk: (i) => Buffer.concat([header(i < count - 1), ...pieces.slice(bounds[i], bounds[i + 1])]),
    };
  }
}
