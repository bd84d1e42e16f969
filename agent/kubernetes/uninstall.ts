// Clean uninstall: when the agent DaemonSet is deleted, no node may keep eBPF programs that redirect pods'
// connections to a proxy that is gone. But a rolling update (or a liveness restart, an eviction) must keep
// the pinned programs and maps, so connections keep being captured across the agent's restart and the new
// agent picks the pins up. Both look the same from inside the pod (SIGTERM, preStop), so the agent asks the
// API server which one it is, in its preStop hook (`weft node-cleanup --if-uninstalling`):
//
//   DaemonSet weft-agent gone (404) or carrying a deletionTimestamp       -> uninstall: remove the pins
//   namespace weft-system carrying a deletionTimestamp                    -> uninstall (kubectl delete -k)
//   401/403: the agent's ServiceAccount or RBAC was deleted already       -> uninstall (delete -k removes
//                                                                           them in the same sweep)
//   DaemonSet present, not being deleted                                  -> restart: keep the pins
//   API server unreachable / timeout                                      -> remove: a node left
//     redirecting to nothing is worse than a node whose pods talk directly until the next agent starts
//     (it re-creates the pins and re-enrolls every pod on start).
//
// Removal is capture's own uninstall (agent/redirect/uninstall.ts): every pinned bpf_link is detached at
// once (the dying agent may still hold descriptors), then every pin is removed.
import { readdirSync, rmdirSync, statfsSync } from 'node:fs';
import { join, sep } from 'node:path';

import { WeftError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { UninstallReport } from '../redirect/pins.js';
import { uninstallCapture } from '../redirect/uninstall.js';

export type ShutdownAction = 'keep' | 'remove';

export interface ShutdownDecision {
  action: ShutdownAction;
  reason: string;
}

/** What the decision reads from the API server; `undefined` means 404 Not Found. */
export interface InstallStateReader {
  daemonSet(namespace: string, name: string): Promise<{ deletionTimestamp?: unknown } | undefined>;
  namespace(name: string): Promise<{ deletionTimestamp?: unknown } | undefined>;
}

export interface DecideOptions {
  namespace: string;
  daemonSet: string;
  timeoutMs?: number;
}

function httpStatus(e: unknown): number | undefined {
  const code = (e as { code?: unknown; statusCode?: unknown } | null)?.code ?? (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

export async function decideOnShutdown(reader: InstallStateReader, opts: DecideOptions): Promise<ShutdownDecision> {
  const { namespace, daemonSet } = opts;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the API server within ${opts.timeoutMs ?? 5000} ms`)), opts.timeoutMs ?? 5000);
  });
  try {
    const [ds, ns] = await Promise.race([Promise.all([reader.daemonSet(namespace, daemonSet), reader.namespace(namespace)]), timeout]);
    if (ds === undefined) return { action: 'remove', reason: `DaemonSet ${namespace}/${daemonSet} is gone: Weft is being uninstalled` };
    if (ds.deletionTimestamp) return { action: 'remove', reason: `DaemonSet ${namespace}/${daemonSet} is being deleted` };
    if (ns === undefined || ns.deletionTimestamp) return { action: 'remove', reason: `namespace ${namespace} is being deleted` };
    return { action: 'keep', reason: `DaemonSet ${namespace}/${daemonSet} is still installed: an update or restart, pins stay so traffic keeps flowing` };
  } catch (e) {
    const status = httpStatus(e);
    if (status === 401 || status === 403) {
      return { action: 'remove', reason: `the API server refused the agent's credentials (${status}): its ServiceAccount or RBAC was removed, Weft is being uninstalled` };
    }
    return { action: 'remove', reason: `cannot tell update from uninstall (${e instanceof Error ? e.message : String(e)}); removing pins so no pod is redirected to a proxy that may not come back` };
  } finally {
    clearTimeout(timer);
  }
}

const BPF_FS_MAGIC = 0xcafe4a11;

export interface PinRemovalReport {
  /** one per capture instance (a directory of pins) found under the pin directory */
  instances: UninstallReport[];
  /** whether the pin directory itself is gone */
  removedDir: boolean;
}

/**
 * Detaches and unpins every capture instance under `pinDir` (capture's uninstallCapture for each: links
 * detached, pins removed), then removes `pinDir`. `pinDir` is either one instance (it holds pins:
 * /sys/fs/bpf/weft/default) or the parent of several (/sys/fs/bpf/weft). Refuses a path with no weft*
 * component or not on bpffs, so a wrong flag can never delete other files. Undefined: nothing there.
 */
export function removePinnedState(pinDir: string, logger: Logger): PinRemovalReport | undefined {
  if (!pinDir.split(sep).some((part) => part.startsWith('weft'))) {
    throw new WeftError('WEFT_ERR_UNINSTALL_PIN_DIR', `refusing to remove ${pinDir}: Weft's pins live under a weft* directory (default /sys/fs/bpf/weft)`);
  }
  let fsType: number;
  try {
    fsType = statfsSync(pinDir).type;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  if (fsType !== BPF_FS_MAGIC) {
    throw new WeftError('WEFT_ERR_UNINSTALL_PIN_DIR', `refusing to remove ${pinDir}: it is not on a bpffs mount (filesystem type 0x${fsType.toString(16)}); pass the pin directory under /sys/fs/bpf`);
  }
  const entries = readdirSync(pinDir, { withFileTypes: true });
  const holdsPins = entries.some((e) => !e.isDirectory());
  const instances = holdsPins ? [pinDir] : entries.filter((e) => e.isDirectory()).map((e) => join(pinDir, e.name));
  const reports = instances.map((dir) => uninstallCapture(dir, logger));
  let removedDir = holdsPins ? (reports[0]?.removedDir ?? false) : false;
  if (!holdsPins) {
    try {
      rmdirSync(pinDir);
      removedDir = true;
    } catch (e) {
      logger.warn('pin directory not removed', { pinDir, error: (e as Error).message });
    }
  }
  return { instances: reports, removedDir };
}
