// `weft node-cleanup`: removes Weft's pinned eBPF state (and the agent's state directory) from a node.
//   --if-uninstalling   only when the agent DaemonSet is being deleted (the agent's preStop hook); a rolling
//                       update keeps the pins (see uninstall.ts)
//   --pin-dir DIR       Weft's bpffs pin directory: every capture instance under it, or one instance
//                       (default /sys/fs/bpf/weft)
//   --state-dir DIR     the agent's state directory, removed too on uninstall (default: leave it)
//   --namespace NS --daemonset NAME   the install to check (default weft-system/weft-agent)
// Exits 0 when it did what it decided (keep or remove), 1 when removing failed; the decision is one JSON
// log line on stderr (kubelet records a failed hook's output in the pod's events).
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { WeftConfigError, errorMessage } from '../../common/errors.js';
import { createLogger } from '../../common/log.js';
import { decideOnShutdown, removePinnedState, type InstallStateReader, type ShutdownDecision } from './uninstall.js';
import { WEFT_SYSTEM_NAMESPACE } from './enrollment-policy.js';
import { DEFAULT_PIN_PARENT } from '../redirect/pins.js';

/** capture's pin parent: every instance (/sys/fs/bpf/weft/<instance>) lives under it */
export const DEFAULT_PIN_DIR = DEFAULT_PIN_PARENT;
export const AGENT_DAEMONSET = 'weft-agent';

async function apiReader(): Promise<InstallStateReader> {
  const { AppsV1Api, CoreV1Api } = await import('@kubernetes/client-node');
  const { loadKubeConfig } = await import('./kubernetes-informers.js');
  const kc = loadKubeConfig();
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const orUndefinedOn404 = async <T>(p: Promise<T>): Promise<T | undefined> => {
    try {
      return await p;
    } catch (e) {
      if ((e as { code?: unknown }).code === 404) return undefined;
      throw e;
    }
  };
  return {
    daemonSet: async (namespace, name) => (await orUndefinedOn404(apps.readNamespacedDaemonSet({ namespace, name })))?.metadata ?? undefined,
    namespace: async (name) => (await orUndefinedOn404(core.readNamespace({ name })))?.metadata ?? undefined,
  };
}

export async function nodeCleanupCommand(argv: string[], reader?: InstallStateReader): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'if-uninstalling': { type: 'boolean', default: false },
        'pin-dir': { type: 'string', default: DEFAULT_PIN_DIR },
        'state-dir': { type: 'string' },
        namespace: { type: 'string', default: WEFT_SYSTEM_NAMESPACE },
        daemonset: { type: 'string', default: AGENT_DAEMONSET },
      },
      strict: true,
    }));
  } catch (e) {
    throw new WeftConfigError('weft node-cleanup', errorMessage(e));
  }
  const log = createLogger({ component: 'node-cleanup' });
  let decision: ShutdownDecision = { action: 'remove', reason: 'unconditional cleanup (no --if-uninstalling)' };
  if (values['if-uninstalling']) {
    decision = await decideOnShutdown(reader ?? (await apiReader()), { namespace: values.namespace, daemonSet: values.daemonset });
  }
  if (decision.action === 'keep') {
    log.info('keeping pinned eBPF state', { reason: decision.reason });
    return 0;
  }
  try {
    const removed = removePinnedState(values['pin-dir'], log);
    // The state directory is a hostPath mount point in the pod: empty it, the directory itself stays.
    const stateDir = values['state-dir'];
    if (stateDir) for (const e of readdirSafe(stateDir)) rmSync(join(stateDir, e), { recursive: true, force: true });
    log.info(removed ? 'detached and removed pinned eBPF state' : 'no pinned eBPF state to remove', {
      reason: decision.reason,
      pinDir: values['pin-dir'],
      ...(removed ? { instances: removed.instances.map((r) => ({ pinDir: r.pinDir, detached: r.detached, unpinned: r.unpinned.length })) } : {}),
      stateDir: values['state-dir'],
    });
    return 0;
  } catch (e) {
    log.error('could not remove pinned eBPF state', { reason: decision.reason, pinDir: values['pin-dir'], error: errorMessage(e) });
    return 1;
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export default async function run(argv: string[]): Promise<number> {
  return nodeCleanupCommand(argv);
}
