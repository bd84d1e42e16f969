// Remove a capture instance: detach its programs and delete its pins. Exported for `weft capture
// uninstall` and `weft agent --uninstall`; needs no running agent and is safe to repeat.
import { WeftConfigError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { releaseBpffs } from '../../native/preflight.js';
import { DEFAULT_PIN_PARENT, uninstallPins, type UninstallReport } from './pins.js';

export const DEFAULT_INSTANCE = 'default';
export const DEFAULT_PIN_DIR = `${DEFAULT_PIN_PARENT}/${DEFAULT_INSTANCE}`;

/** The pin directory of a named instance: /sys/fs/bpf/weft/<instance>. */
export function pinDirFor(instance: string = DEFAULT_INSTANCE): string {
  if (!/^[A-Za-z0-9._-]+$/.test(instance) || instance === '.' || instance === '..') {
    throw new WeftConfigError('instance', `"${instance}" may only use letters, digits, ".", "_" and "-"`);
  }
  return `${DEFAULT_PIN_PARENT}/${instance}`;
}

export function uninstallCapture(pinDir: string, logger: Logger): UninstallReport {
  const report = uninstallPins(pinDir, logger);
  // a bpffs the agent mounted itself goes too, once nothing of anyone's is pinned on it
  if (releaseBpffs()) logger.info('unmounted the bpffs Weft had mounted', { mount: '/sys/fs/bpf' });
  return report;
}

export type { UninstallReport };
