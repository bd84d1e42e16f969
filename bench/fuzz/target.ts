// What one fuzz target gives the engine: an arbitrary of inputs (fast-check, seeded, shrinkable), an oracle
// that checks one input against the real code, and a way to show an input for a report or a regression
// test. A target is set up once per run (servers, a CA) and closed at the end.
import type fc from 'fast-check';

export interface FuzzContext<T> {
  arbitrary: fc.Arbitrary<T>;
  /** inputs one property run carries (a batch of connections run side by side counts each) */
  perRun?: (input: T) => number;
  /** one input: throws (or rejects) with an OracleViolation when the code misbehaves */
  check(input: T): void | Promise<void>;
  /** the input in a form to paste into a regression test */
  show(input: T): string;
  close(): Promise<void>;
  /** false: report a failure as found, unshrunk (an input that fails by timing out would take hours to shrink) */
  shrink?: boolean;
}

export interface FuzzTarget {
  name: string;
  /** what the target drives, for the README and the report */
  surface: string;
  setup(): Promise<FuzzContext<unknown>>;
}

/** An oracle said no: the input made the code crash, hang, leak or answer wrongly. */
export class OracleViolation extends Error {
  constructor(
    readonly kind: 'crash' | 'hang' | 'wrong',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${kind}: ${message}`, options);
    this.name = 'OracleViolation';
  }
}

/** Rejects with a hang verdict when `p` does not settle within `ms`: every input is answered or refused in time. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new OracleViolation('hang', `${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
