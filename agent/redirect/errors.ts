// Errors of the redirect manager (the native binding has its own, in native/errors.ts).
import { WeftError } from '../../common/errors.js';

/** Capture cannot be installed or used as asked: wrong cgroup, conflicting pins, not installed. */
export class CaptureError extends WeftError {
  constructor(code: 'WEFT_ERR_CAPTURE_ROOT_CGROUP' | 'WEFT_ERR_CAPTURE_CONFLICT' | 'WEFT_ERR_CAPTURE_NOT_INSTALLED' | 'WEFT_ERR_CAPTURE_FULL', message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(code, message, options);
  }
}
