// Flags every operator command shares (where the mesh is, output format) and the way they report failures.
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { WeftConfigError } from '../common/errors.js';
import { parseFormat, type Format } from './output.js';
import { resolveTarget, type Target } from './target.js';

export const TARGET_HELP = `where the mesh is (first that applies):
  --controller URL    a controller's HTTP API (or WEFT_CONTROLLER)
  --sandbox ID        a sandbox on this machine (or WEFT_SANDBOX_ID); default: "dev", else the only one running
  (otherwise)         Kubernetes from the kubeconfig, through kubectl port-forward
output:
  -o json|yaml        the full objects, for scripts; colour only on a terminal (NO_COLOR turns it off)
`;

export const COMMON_OPTIONS = {
  controller: { type: 'string' },
  sandbox: { type: 'string' },
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface Parsed<V> {
  values: V & { controller?: string; sandbox?: string; output?: string; help?: boolean };
  positionals: string[];
  format: Format;
}

export function parse<O extends NonNullable<ParseArgsConfig['options']>>(cmd: string, argv: string[], options: O) {
  let r;
  try {
    r = parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new WeftConfigError(`weft ${cmd}`, `${(e as Error).message}; see weft ${cmd} --help`);
  }
  const values = r.values as Record<string, string | boolean | undefined>;
  return { values, positionals: r.positionals, format: parseFormat(values.output as string | undefined) };
}

/** Runs `fn` with the resolved target and always releases it (port-forwards). */
export async function withTarget<T>(values: Record<string, unknown>, wantAgents: boolean, fn: (t: Target) => Promise<T>): Promise<T> {
  const t = await resolveTarget({ controller: values.controller as string | undefined, sandbox: values.sandbox as string | undefined }, wantAgents);
  try {
    return await fn(t);
  } finally {
    t.close();
  }
}
