// Base class for every error Weft raises on purpose. The `code` is stable (documented in docs/errors.md,
// a test fails when one is missing there); the message says what was wrong, where, and what to do.
export class WeftError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options?.details;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/** Invalid user input: a flag, a YAML object, a spec. `where` names the object and field. */
export class WeftConfigError extends WeftError {
  readonly where: string;
  constructor(where: string, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super('WEFT_ERR_CONFIG', `${where}: ${message}`, options);
    this.where = where;
  }
}

export function isWeftError(e: unknown): e is WeftError {
  return e instanceof WeftError;
}

/** Best-effort message for any thrown value, for logs and CLI output. */
export function errorMessage(e: unknown): string {
  if (e instanceof WeftError) return `${e.code}: ${e.message}`;
  if (e instanceof Error) return e.message;
  return String(e);
}
