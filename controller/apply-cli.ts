// `weft apply -f FILE|DIR` and `weft delete -f FILE|DIR`: send objects to a running controller's admin API
// (POST /api/v1/apply or /delete on its HTTP port). Files are parsed here first, so a YAML error names the
// file and line; the controller validates every object and applies all or nothing.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { WeftConfigError } from '../common/errors.js';
import { PORTS } from '../common/ports.js';
import { APPLY_PATH, DELETE_PATH } from './api/paths.js';
import { parseFlags } from './flags.js';
import { parseObjects } from './sources/yaml-objects.js';
import { resolveTarget, unreachable } from '../cli/target.js';
import type { KubeObject } from './sources/types.js';

export const APPLY_HELP = (verb: 'apply' | 'delete') => `usage: weft ${verb} -f FILE|DIR [-f ...] [flags]

${verb === 'apply' ? 'Adds or replaces' : 'Removes'} Kubernetes-shaped objects in a running Weft controller (all or nothing).

flags:
  -f, --filename PATH   a YAML/JSON file (multi-document) or a directory of them (recursive); repeatable; - for stdin
  --controller URL      the controller's HTTP API (or WEFT_CONTROLLER); default: the running sandbox's
                        (--sandbox ID), else Kubernetes through kubectl port-forward, else http://127.0.0.1:${PORTS.controllerWeb}
  --token-file FILE     operator token (the controller's --operator-token-file), or WEFT_OPERATOR_TOKEN
  -h, --help            this help
`;

function filesOf(path: string): string[] {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) throw new WeftConfigError(`-f ${path}`, 'does not exist');
  if (!st.isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((e) => {
      const p = join(path, e);
      if (e.startsWith('.')) return [];
      return statSync(p).isDirectory() ? filesOf(p) : /\.(ya?ml|json)$/.test(e) ? [p] : [];
    });
}

export async function runApplyCommand(verb: 'apply' | 'delete', argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { bool: ['help', 'h'], multi: ['f', 'filename'] });
  if (flags.has('help') || flags.has('h')) {
    process.stdout.write(APPLY_HELP(verb));
    return 0;
  }
  for (const k of flags.keys()) if (!['f', 'filename', 'controller', 'token-file', 'sandbox'].includes(k)) throw new WeftConfigError(`flag --${k}`, `is not a weft ${verb} flag; see weft ${verb} --help`);
  const paths = [...(flags.get('f') ?? []), ...(flags.get('filename') ?? [])];
  if (paths.length === 0) throw new WeftConfigError(`weft ${verb}`, 'needs -f FILE|DIR');
  const objects: KubeObject[] = [];
  for (const p of paths) {
    if (p === '-') {
      objects.push(...parseObjects(readFileSync(0, 'utf8'), 'stdin'));
      continue;
    }
    for (const f of filesOf(p)) objects.push(...parseObjects(readFileSync(f, 'utf8'), f));
  }
  if (objects.length === 0) throw new WeftConfigError(`-f ${paths.join(', ')}`, 'holds no objects');
  const target = await resolveTarget({ controller: flags.get('controller')?.[0], sandbox: flags.get('sandbox')?.[0] });
  const base = target.controller;
  const tokenFile = flags.get('token-file')?.[0];
  const token = tokenFile ? readFileSync(tokenFile, 'utf8').trim() : process.env.WEFT_OPERATOR_TOKEN;
  let res: Response;
  try {
    res = await fetch(base + (verb === 'apply' ? APPLY_PATH : DELETE_PATH), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
    });
  } catch (e) {
    target.close();
    throw unreachable(target, e);
  }
  const body = (await res.json().catch(() => ({}))) as { applied?: string[]; deleted?: string[]; error?: { code: string; message: string } };
  target.close();
  if (!res.ok) {
    process.stderr.write(`weft ${verb}: ${body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${res.status}`}\nnothing was ${verb === 'apply' ? 'applied' : 'deleted'}\n`);
    return 1;
  }
  for (const n of body.applied ?? body.deleted ?? []) process.stdout.write(`${n} ${verb === 'apply' ? 'applied' : 'deleted'}\n`);
  return 0;
}
