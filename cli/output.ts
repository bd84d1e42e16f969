// Output for the operator commands: aligned tables (kubectl style), colour only when stdout is a terminal
// (and NO_COLOR is unset), and `-o json|yaml` for scripts, which always gets the full objects.
import { stringify as yamlStringify } from 'yaml';

import { WeftConfigError } from '../common/errors.js';

export type Format = 'table' | 'wide' | 'json' | 'yaml';

export function parseFormat(v: string | undefined): Format {
  if (v === undefined) return 'table';
  if (v === 'json' || v === 'yaml' || v === 'wide' || v === 'table') return v;
  throw new WeftConfigError('-o', `"${v}" is not an output format; use json, yaml or wide`);
}

export interface Out {
  write(s: string): void;
  color: boolean;
}

export function stdout(): Out {
  return { write: (s) => void process.stdout.write(s), color: !!process.stdout.isTTY && !process.env.NO_COLOR };
}

const CODES = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;
export type Color = keyof typeof CODES;

export function paint(o: Out, c: Color | undefined, s: string): string {
  return o.color && c ? `\u001b[${CODES[c]}m${s}\u001b[0m` : s;
}

/** A cell is a string, or a string with the colour it is shown in on a terminal. */
export type Cell = string | { text: string; color?: Color };

const text = (c: Cell) => (typeof c === 'string' ? c : c.text);

/** Columns padded to the widest cell (colour codes do not count), two spaces apart. */
export function table(o: Out, headers: string[], rows: Cell[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => text(r[i] ?? '').length)));
  const line = (cells: Cell[]) =>
    cells
      .map((c, i) => {
        const t = text(c);
        const pad = i === cells.length - 1 ? '' : ' '.repeat(widths[i]! - t.length + 2);
        return (typeof c === 'string' ? t : paint(o, c.color, t)) + pad;
      })
      .join('')
      .trimEnd();
  return [line(headers.map((h) => ({ text: h, color: 'bold' as const }))), ...rows.map(line)].join('\n') + '\n';
}

export function structured(format: 'json' | 'yaml', v: unknown): string {
  return format === 'json' ? JSON.stringify(v, null, 2) + '\n' : yamlStringify(v);
}

/** Percent with one decimal, "-" when there is nothing to divide. */
export function pct(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '-' : `${(v * 100).toFixed(2)}%`;
}

export function num(v: number | null | undefined, digits = 1): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits);
}

export function ms(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-';
  return v < 10 ? `${v.toFixed(1)}ms` : `${Math.round(v)}ms`;
}

export function rateColor(success: number | null): Color | undefined {
  if (success === null) return undefined;
  return success >= 0.99 ? 'green' : success >= 0.9 ? 'yellow' : 'red';
}
