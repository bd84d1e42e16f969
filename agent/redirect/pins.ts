// The bpffs pin directory of one Weft capture instance, and the programs attached from it.
//
// Layout of <pinDir> (e.g. /sys/fs/bpf/weft/<instance>), flat:
//   weft_config weft_pods weft_pod_ports weft_dests weft_orig_ck weft_orig_tup weft_guard_src weft_counters (maps)
//   link_connect4 link_connect6 link_sockops link_inbound_guard                              (bpf_links)
// Pinned links keep the programs attached, and pinned maps keep their contents, while no agent runs; a
// new agent re-opens them instead of loading anew, so traffic is redirected across restarts.
import { existsSync, mkdirSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Logger } from '../../common/log.js';
import { BpfLink, BpfObject, unpin } from '../../native/bpf.js';
import { cgroupId } from '../../native/cgroup.js';
import { BpfLoadError, NativeError } from '../../native/errors.js';
import { CaptureError } from './errors.js';
import { OBJECTS } from './layout.js';

/** The committed objects, relative to the compiled module (dist/agent/redirect -> bpf/). */
export const DEFAULT_OBJECTS_DIR = fileURLToPath(new URL('../../../bpf/', import.meta.url));

export const DEFAULT_PIN_PARENT = '/sys/fs/bpf/weft';

export function linkPin(pinDir: string, link: string): string {
  return join(pinDir, link);
}

export interface AttachReport {
  /** links attached by this call */
  attached: string[];
  /** links found pinned and still attached to the requested cgroup */
  reused: string[];
}

/**
 * Make sure every program is attached at `cgroupRoot` through a pinned link in `pinDir`. Idempotent:
 * pinned links still attached there are kept; links whose cgroup vanished are replaced; a pin attached to
 * a different cgroup is a conflict (another installation owns this directory).
 */
export function ensureAttached(pinDir: string, cgroupRoot: string, objectsDir: string, logger: Logger): AttachReport {
  mkdirSync(pinDir, { recursive: true });
  const rootId = cgroupId(cgroupRoot);
  const report: AttachReport = { attached: [], reused: [] };
  for (const o of OBJECTS) {
    const pin = linkPin(pinDir, o.link);
    if (existsSync(pin)) {
      const link = BpfLink.openPinned(pin);
      try {
        const info = link.info();
        if (info.cgroupId === rootId) {
          report.reused.push(o.link);
          continue;
        }
        if (info.cgroupId !== 0n) {
          throw new CaptureError('WEFT_ERR_CAPTURE_CONFLICT', `${pin} is attached to cgroup id ${info.cgroupId}, not to ${cgroupRoot} (id ${rootId}); another capture installation uses ${pinDir}: run \`weft capture uninstall --bpffs ${pinDir}\` first or choose another instance`);
        }
        logger.warn('pinned link lost its cgroup; re-attaching', { pin });
      } finally {
        link.close();
      }
      unpin(pin);
    }
    // Maps are pinned by name under pinDir: the first object creates them, every later one re-uses them.
    const obj = loadObject(join(objectsDir, o.file), pinDir);
    try {
      const link = obj.attachCgroup(o.program, cgroupRoot);
      try {
        link.pin(pin);
      } catch (e) {
        link.detach();
        throw e;
      } finally {
        link.close();
      }
      report.attached.push(o.link);
    } finally {
      obj.close();
    }
  }
  return report;
}

/** Load the objects only to create (or re-use) the pinned maps, attaching nothing. */
export function ensureMaps(pinDir: string, objectsDir: string): void {
  mkdirSync(pinDir, { recursive: true });
  for (const o of OBJECTS) loadObject(join(objectsDir, o.file), pinDir).close();
}

function loadObject(path: string, pinDir: string): BpfObject {
  try {
    return BpfObject.load(path, { pinRoot: pinDir });
  } catch (e) {
    if (e instanceof BpfLoadError && /reuse pinned map/.test(e.log)) {
      throw new CaptureError('WEFT_ERR_CAPTURE_CONFLICT', `the maps pinned in ${pinDir} have another layout than ${path} (an older Weft installed them); run \`weft capture uninstall --bpffs ${pinDir}\` and start the agent again`, { cause: e });
    }
    throw e;
  }
}

export interface UninstallReport {
  pinDir: string;
  detached: string[];
  unpinned: string[];
  removedDir: boolean;
}

/**
 * Detach every pinned link and remove every pin in `pinDir`, then the directory. Safe to run twice, and
 * on a directory a crashed agent left half-made. Only `pinDir` is touched.
 */
export function uninstallPins(pinDir: string, logger: Logger): UninstallReport {
  const report: UninstallReport = { pinDir, detached: [], unpinned: [], removedDir: false };
  if (!existsSync(pinDir)) return report;
  const names = readdirSync(pinDir);
  for (const name of names.filter((n) => n.startsWith('link_'))) {
    const pin = join(pinDir, name);
    try {
      const link = BpfLink.openPinned(pin);
      try {
        link.detach();
        report.detached.push(name);
      } finally {
        link.close();
      }
    } catch (e) {
      // a link whose cgroup is gone is already detached; removing the pin is all that is left
      logger.warn('could not detach pinned link; removing its pin', { pin, error: e instanceof NativeError ? e.message : String(e) });
    }
    if (unpin(pin)) report.unpinned.push(name);
  }
  for (const name of names.filter((n) => !n.startsWith('link_'))) {
    if (unpin(join(pinDir, name))) report.unpinned.push(name);
  }
  try {
    rmdirSync(pinDir);
    report.removedDir = true;
  } catch (e) {
    logger.warn('pin directory not removed', { pinDir, error: (e as Error).message });
  }
  return report;
}
