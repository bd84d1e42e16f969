// Maglev consistent hashing (Eisenbud et al., NSDI 2016; Envoy's MAGLEV with the same default table size):
// each endpoint fills a lookup table of a prime size M in the order of its own permutation, so every slot
// belongs to one endpoint, endpoints own ≈ M/N slots each, and adding or removing one of N endpoints
// reassigns ≈ 1/N of the slots. A key is hashed to a slot. Tables are built per endpoint set and cached.

export const MAGLEV_TABLE_SIZE = 65537;

/** 32-bit FNV-1a with a murmur3 finaliser (FNV alone mixes its last bytes poorly). */
export function hash32(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class MaglevTable {
  /** slot -> index into `ids` */
  private readonly table: Uint16Array | Uint32Array;

  /** `ids`: the endpoint ids (sorted by the caller, so equal sets give equal tables). */
  constructor(readonly ids: readonly string[], readonly size = MAGLEV_TABLE_SIZE) {
    const n = ids.length;
    this.table = n <= 0xffff ? new Uint16Array(size) : new Uint32Array(size);
    if (n === 0) return;
    const offset = new Uint32Array(n);
    const skip = new Uint32Array(n);
    const next = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      offset[i] = hash32(ids[i]!, 0x9747b28c) % size;
      skip[i] = (hash32(ids[i]!, 0x1b873593) % (size - 1)) + 1;
    }
    const filled = new Uint8Array(size);
    let count = 0;
    while (count < size) {
      for (let i = 0; i < n && count < size; i++) {
        let c = (offset[i]! + next[i]! * skip[i]!) % size;
        while (filled[c]) {
          next[i] = next[i]! + 1;
          c = (offset[i]! + next[i]! * skip[i]!) % size;
        }
        this.table[c] = i;
        filled[c] = 1;
        next[i] = next[i]! + 1;
        count++;
      }
    }
  }

  /** The endpoint index for a key hash. */
  lookup(h: number): number {
    return this.table[h % this.size]!;
  }
}
