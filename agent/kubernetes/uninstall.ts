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
// Removing the pins (not the programs' file descriptors) is enough: capture attaches with bpf_link, pinned;
// when the pin is unlinked and the exiting agent closes its descriptors, the kernel detaches the links.
import { rmSync, statfsSync } from 'node:fs';
import { basename } from 'node:path';

import { WeftError } from '../../common/errors.js';

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

/**
 * Removes Weft's pinned eBPF objects (links, programs, maps) under `pinDir`. Refuses anything that is not a
 * directory named weft* on a bpffs mount, so a wrong flag can never delete other files. Returns false when
 * there was nothing to remove.
 */
export function removePinnedState(pinDir: string): boolean {
  if (!basename(pinDir).startsWith('weft')) {
    throw new WeftError('WEFT_ERR_UNINSTALL_PIN_DIR', `refusing to remove ${pinDir}: Weft's pin directory is named weft* (e.g. /sys/fs/bpf/weft)`);
  }
  let fsType: number;
  try {
    fsType = statfsSync(pinDir).type;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  if (fsType !== BPF_FS_MAGIC) {
    throw new WeftError('WEFT_ERR_UNINSTALL_PIN_DIR', `refusing to remove ${pinDir}: it is not on a bpffs mount (filesystem type 0x${fsType.toString(16)}); pass the pin directory under /sys/fs/bpf`);
  }
  rmSync(pinDir, { recursive: true, force: true });
  return true;
}
