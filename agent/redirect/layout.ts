// The byte layout of every map in bpf/lib/maps.h and bpf/lib/counters.h, as codecs. Keep in step with
// the C structs: test/capture/layout.test.ts checks each size against the kernel's view of the maps.
import { decodeIp, encodeIp, type Codec, type Family } from '../../native/codec.js';
import { BpfCodecError } from '../../native/errors.js';

/** Names of programs and maps in the committed objects (bpf/*.o). */
export const OBJECTS = [
  { file: 'connect4.o', program: 'weft_connect4', link: 'link_connect4' },
  { file: 'connect6.o', program: 'weft_connect6', link: 'link_connect6' },
  { file: 'sockops.o', program: 'weft_sockops', link: 'link_sockops' },
  { file: 'inbound_guard.o', program: 'weft_inbound_guard', link: 'link_inbound_guard' },
] as const;

export const MAPS = {
  config: 'weft_config',
  pods: 'weft_pods',
  dests: 'weft_dests',
  origByCookie: 'weft_orig_ck',
  origByTuple: 'weft_orig_tup',
  guardSources: 'weft_guard_src',
  counters: 'weft_counters',
  podPorts: 'weft_pod_ports',
  proxySyn: 'weft_proxy_syn',
  inPods: 'weft_in_pods',
  inSocks: 'weft_in_socks',
  alive: 'weft_alive',
} as const;

/** The sk_lookup program of inbound capture: attached per pod network namespace, not at the cgroup. */
export const INBOUND_LOOKUP = { file: 'inbound_lookup.o', program: 'weft_inbound_lookup', linkPrefix: 'link_in_' } as const;

/** weft_pod.flags bits (WEFT_POD_* in maps.h) */
export const POD_FLAGS = { portModes: 1, failOpen: 2 } as const;

/** WEFT_MODE_* in maps.h */
export const GUARD_MODE = { PERMISSIVE: 0, STRICT: 1, DISABLE: 2 } as const;
export type GuardMode = keyof typeof GUARD_MODE;

/** enum weft_counter in counters.h */
export const COUNTER_INDEX = { redirected: 0, passed: 1, guardDrops: 2, lookupMisses: 3, loopSkips: 4, closed: 5, inboundSteered: 6, inboundNoListener: 7, failClosed: 8, failOpen: 9 } as const;
export type CounterName = keyof typeof COUNTER_INDEX;

function family(f: number, where: string): Family {
  if (f === 4 || f === 6) return f;
  throw new BpfCodecError(`${where}: family ${f} is neither 4 nor 6`);
}

function port(p: number, where: string): number {
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new BpfCodecError(`${where}: port ${p} is not 0-65535`);
  return p;
}

// ---- weft_config --------------------------------------------------------------------------------

export interface CaptureConfig {
  proxyIpv4?: string;
  proxyIpv6?: string;
  proxyPort: number;
  proxyMark: number;
  hostNetnsCookie: bigint;
}

export const configCodec: Codec<CaptureConfig> = {
  size: 40,
  encode(v, b, o = 0) {
    b.fill(0, o, o + 40);
    if (v.proxyIpv4) {
      const scratch = Buffer.alloc(16);
      if (encodeIp(v.proxyIpv4, scratch, 0) !== 4) throw new BpfCodecError(`proxy IPv4 address "${v.proxyIpv4}" is not IPv4`);
      scratch.copy(b, o, 0, 4);
    }
    if (v.proxyIpv6 && encodeIp(v.proxyIpv6, b, o + 4) !== 6) throw new BpfCodecError(`proxy IPv6 address "${v.proxyIpv6}" is not IPv6`);
    b.writeUInt16LE(port(v.proxyPort, 'proxy port'), o + 20);
    b.writeUInt32LE(v.proxyMark >>> 0, o + 24);
    b.writeBigUInt64LE(v.hostNetnsCookie, o + 32);
  },
  decode(b, o = 0) {
    const v4 = b.readUInt32LE(o) !== 0 ? decodeIp(b, o, 4) : undefined;
    const v6 = b.subarray(o + 4, o + 20).some((x) => x !== 0) ? decodeIp(b, o + 4, 6) : undefined;
    return {
      ...(v4 ? { proxyIpv4: v4 } : {}),
      ...(v6 ? { proxyIpv6: v6 } : {}),
      proxyPort: b.readUInt16LE(o + 20),
      proxyMark: b.readUInt32LE(o + 24),
      hostNetnsCookie: b.readBigUInt64LE(o + 32),
    };
  },
};

// ---- weft_pods ----------------------------------------------------------------------------------

export interface PodEntry {
  mode: number;
  /** POD_FLAGS bits; 0 when absent */
  flags?: number;
}

export const podCodec: Codec<PodEntry> = {
  size: 8,
  encode(v, b, o = 0) {
    b.writeUInt32LE(v.mode, o);
    b.writeUInt32LE((v.flags ?? 0) >>> 0, o + 4);
  },
  decode: (b, o = 0) => ({ mode: b.readUInt32LE(o), flags: b.readUInt32LE(o + 4) }),
};

// ---- weft_pod_ports -----------------------------------------------------------------------------

export interface PodPortKey {
  cgroupId: bigint;
  port: number;
}

export const podPortCodec: Codec<PodPortKey> = {
  size: 16,
  encode(v, b, o = 0) {
    b.fill(0, o, o + 16);
    b.writeBigUInt64LE(v.cgroupId, o);
    b.writeUInt16LE(port(v.port, `pod port of cgroup ${v.cgroupId}`), o + 8);
  },
  decode: (b, o = 0) => ({ cgroupId: b.readBigUInt64LE(o), port: b.readUInt16LE(o + 8) }),
};

// ---- weft_dests ---------------------------------------------------------------------------------

export interface DestKey {
  ip: string;
  /** 0 = every port of this address */
  port: number;
}

export const destCodec: Codec<DestKey> = {
  size: 24,
  encode(v, b, o = 0) {
    b.fill(0, o, o + 24);
    const f = encodeIp(v.ip, b, o + 8);
    b.writeUInt32LE(f, o);
    b.writeUInt16LE(port(v.port, `destination ${v.ip}`), o + 4);
  },
  decode(b, o = 0) {
    const f = family(b.readUInt32LE(o), 'weft_dests key');
    return { ip: decodeIp(b, o + 8, f), port: b.readUInt16LE(o + 4) };
  },
};

// ---- weft_orig_ck / weft_orig_tup values --------------------------------------------------------

export interface OrigEntry {
  ip: string;
  port: number;
  family: Family;
  cgroupId: bigint;
  /** CLOCK_MONOTONIC ns at connect */
  createdNs: bigint;
  /** CLOCK_MONOTONIC ns when the pod's socket closed; 0 while open */
  closedNs: bigint;
}

export const origCodec: Codec<OrigEntry> = {
  size: 48,
  encode(v, b, o = 0) {
    b.fill(0, o, o + 48);
    const f = encodeIp(v.ip, b, o);
    b.writeUInt16LE(port(v.port, 'original port'), o + 16);
    b.writeUInt16LE(f, o + 18);
    b.writeBigUInt64LE(v.cgroupId, o + 24);
    b.writeBigUInt64LE(v.createdNs, o + 32);
    b.writeBigUInt64LE(v.closedNs, o + 40);
  },
  decode(b, o = 0) {
    const f = family(b.readUInt16LE(o + 18), 'original destination');
    return {
      ip: decodeIp(b, o, f),
      port: b.readUInt16LE(o + 16),
      family: f,
      cgroupId: b.readBigUInt64LE(o + 24),
      createdNs: b.readBigUInt64LE(o + 32),
      closedNs: b.readBigUInt64LE(o + 40),
    };
  },
};

// ---- weft_orig_tup key --------------------------------------------------------------------------

export interface TupleKey {
  peerIp: string;
  peerPort: number;
  localIp: string;
  localPort: number;
}

export const TUPLE_SIZE = 40;

export const tupleCodec: Codec<TupleKey> = {
  size: TUPLE_SIZE,
  encode(v, b, o = 0) {
    b.fill(0, o, o + TUPLE_SIZE);
    const f1 = encodeIp(v.peerIp, b, o);
    const f2 = encodeIp(v.localIp, b, o + 16);
    if (f1 !== f2) throw new BpfCodecError(`tuple mixes IPv${f1} peer ${v.peerIp} and IPv${f2} local ${v.localIp}`);
    b.writeUInt16LE(port(v.peerPort, 'peer port'), o + 32);
    b.writeUInt16LE(port(v.localPort, 'local port'), o + 34);
    b.writeUInt32LE(f1, o + 36);
  },
  decode(b, o = 0) {
    const f = family(b.readUInt32LE(o + 36), 'weft_orig_tup key');
    return { peerIp: decodeIp(b, o, f), localIp: decodeIp(b, o + 16, f), peerPort: b.readUInt16LE(o + 32), localPort: b.readUInt16LE(o + 34) };
  },
};

// ---- weft_guard_src -----------------------------------------------------------------------------

export const addrCodec: Codec<string> = {
  size: 20,
  encode(ip, b, o = 0) {
    b.fill(0, o, o + 20);
    b.writeUInt32LE(encodeIp(ip, b, o + 4), o);
  },
  decode: (b, o = 0) => decodeIp(b, o + 4, family(b.readUInt32LE(o), 'weft_guard_src key')),
};

/** Reserved-flags value of weft_dests and weft_guard_src. */
export const flagsCodec: Codec<number> = {
  size: 4,
  encode: (v, b, o = 0) => void b.writeUInt32LE(v >>> 0, o),
  decode: (b, o = 0) => b.readUInt32LE(o),
};
