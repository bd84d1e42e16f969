// Read-only view of an installed capture instance, from its pins alone (no agent needed): which links are
// attached where, how full the maps are, and the counters. Used by `weft capture status`.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { BpfLink, BpfMap } from '../../native/bpf.js';
import { u32, u64, type Codec } from '../../native/codec.js';
import { CaptureError } from './errors.js';
import { COUNTER_INDEX, MAPS, OBJECTS, configCodec, type CaptureConfig, type CounterName } from './layout.js';

export interface CaptureStatus {
  pinDir: string;
  links: Array<{ name: string; pinned: boolean; id?: number; cgroupId?: string; attached: boolean }>;
  /** entries per map, by map name */
  maps: Record<string, number>;
  counters: Record<CounterName, string>;
  config?: Omit<CaptureConfig, 'hostNetnsCookie'> & { hostNetnsCookie: string };
}

/** A codec that only knows a size: enough to count entries of any map. */
function opaque(size: number): Codec<Buffer> {
  return { size, encode: (v, b, o = 0) => void v.copy(b, o), decode: (b, o = 0) => Buffer.from(b.subarray(o, o + size)) };
}

export function sumCounters(counters: BpfMap<number, bigint>): Record<CounterName, bigint> {
  const out = {} as Record<CounterName, bigint>;
  for (const [name, idx] of Object.entries(COUNTER_INDEX) as Array<[CounterName, number]>) {
    out[name] = (counters.lookupPerCpu(idx) ?? []).reduce((a, b) => a + b, 0n);
  }
  return out;
}

export function captureStatus(pinDir: string): CaptureStatus {
  if (!existsSync(pinDir)) {
    throw new CaptureError('WEFT_ERR_CAPTURE_NOT_INSTALLED', `no capture is installed at ${pinDir} (the directory does not exist); the agent installs it on start`);
  }
  const status: CaptureStatus = { pinDir, links: [], maps: {}, counters: {} as Record<CounterName, string> };
  for (const o of OBJECTS) {
    const pin = join(pinDir, o.link);
    if (!existsSync(pin)) {
      status.links.push({ name: o.link, pinned: false, attached: false });
      continue;
    }
    const link = BpfLink.openPinned(pin);
    try {
      const info = link.info();
      status.links.push({ name: o.link, pinned: true, id: info.id, cgroupId: String(info.cgroupId ?? 0n), attached: (info.cgroupId ?? 0n) !== 0n });
    } finally {
      link.close();
    }
  }
  const pins = new Set(readdirSync(pinDir));
  for (const name of Object.values(MAPS)) {
    if (!pins.has(name) || name === MAPS.counters || name === MAPS.config || name === MAPS.alive) continue;
    const probe = BpfMap.openPinned(join(pinDir, name), opaque(1), opaque(1), { sizesFromKernel: true });
    try {
      status.maps[name] = probe.count();
    } finally {
      probe.close();
    }
  }
  if (pins.has(MAPS.counters)) {
    const counters = BpfMap.openPinned(join(pinDir, MAPS.counters), u32, u64);
    try {
      for (const [k, v] of Object.entries(sumCounters(counters))) status.counters[k as CounterName] = v.toString();
    } finally {
      counters.close();
    }
  }
  if (pins.has(MAPS.config)) {
    const config = BpfMap.openPinned(join(pinDir, MAPS.config), u32, configCodec);
    try {
      const c = config.lookup(0);
      if (c) status.config = { ...c, hostNetnsCookie: c.hostNetnsCookie.toString() };
    } finally {
      config.close();
    }
  }
  return status;
}
