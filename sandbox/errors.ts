// Errors `weft sandbox` raises on purpose (codes documented in docs/errors.md).
import { WeftError } from '../common/errors.js';

/** A build step failed: `step` says which one, the message says why and what to do. */
export class SandboxStepError extends WeftError {
  constructor(readonly step: string, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super('WEFT_ERR_SANDBOX_STEP', `${step}: ${message}`, options);
  }
}

/** `up` found a sandbox with the same id (running, or left behind by a crash). */
export class SandboxExistsError extends WeftError {
  constructor(id: string, message: string) {
    super('WEFT_ERR_SANDBOX_EXISTS', message, { details: { id } });
  }
}

/** status/exec/logs on a sandbox or pod that does not exist. */
export class SandboxNotFoundError extends WeftError {
  constructor(what: string, message: string) {
    super('WEFT_ERR_SANDBOX_NOT_FOUND', message, { details: { what } });
  }
}

/** The machine cannot host a sandbox (not root, no cgroup2, a missing program). */
export class SandboxHostError extends WeftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WEFT_ERR_SANDBOX_HOST', message, options);
  }
}
