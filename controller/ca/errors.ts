// Why the CA refused something. Each refusal reason is its own stable code so agents, logs and tests can
// tell them apart; the message says what was asked, by whom, and what is allowed.
import { WeftError } from '../../common/errors.js';

export const CSR_REFUSAL = {
  /** the CSR could not be parsed, or its self-signature does not verify */
  invalid: 'WEFT_ERR_CSR_INVALID',
  /** the key is not ECDSA P-256 or P-384 */
  keyAlgorithm: 'WEFT_ERR_CSR_KEY_ALGORITHM',
  /** not exactly one URI SAN (or other SAN kinds present) */
  uriCount: 'WEFT_ERR_CSR_URI_COUNT',
  /** the URI is not spiffe://<td>/ns/<ns>/sa/<sa> */
  notSpiffe: 'WEFT_ERR_CSR_NOT_SPIFFE',
  /** the SPIFFE ID belongs to another trust domain */
  trustDomain: 'WEFT_ERR_CSR_TRUST_DOMAIN',
  /** the service account has no pod on the asking node */
  notOnNode: 'WEFT_ERR_CSR_NOT_ON_NODE',
} as const;

export type CsrRefusalCode = (typeof CSR_REFUSAL)[keyof typeof CSR_REFUSAL];

export class CsrRefusedError extends WeftError {
  constructor(code: CsrRefusalCode, message: string, details?: Record<string, unknown>) {
    super(code, message, details ? { details } : undefined);
  }
}

/** The CA's root material is missing, unreadable or not a usable CA (operator-supplied files, persisted state). */
export class CaRootError extends WeftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WEFT_ERR_CA_ROOT', message, options);
  }
}
