// `weft analyze -f FILE|DIR ...`: the offline analysis (controller/analyze/analyze.ts) of YAML files, before
// they are applied: every object checked as the controller would, then findings across objects. Exit 79 when
// a finding is at or above --failure-threshold (Error by default), as `istioctl analyze` does, so a CI job can
// gate on it; 0 otherwise.
import { existsSync } from 'node:fs';

import { WeftConfigError } from '../common/errors.js';
import { analyze, filesOf, LEVELS, type Level } from '../controller/analyze/analyze.js';
import { parse } from './common.js';
import { stdout, structured, table, type Cell } from './output.js';

export const ANALYZE_HELP = `usage: weft analyze -f FILE|DIR [-f ...] [--failure-threshold Error|Warning|Info] [-o json|yaml]

Checks Kubernetes and Weft objects offline, without a mesh: each object as the controller would check it
when applied (an object it would refuse is an Error), then across the objects: routes whose parent Service
or backends do not exist, two routes with rules matching the same requests to one Service, policies that
select no workload, principals naming service accounts nothing runs as, TrafficPolicies without their
Service. Each finding names the object, its file and line.

  -f, --filename FILE|DIR   a YAML/JSON file, or a directory (read recursively: *.yaml, *.yml, *.json)
  --failure-threshold L     exit 79 when a finding is at level L or worse (default Error)
  --root-namespace NS       the mesh's root namespace (default weft-system)
  -o json|yaml              the findings as data
Exit: 0 no finding at the threshold, 79 findings at the threshold, 2 bad usage.
`;

export const EXIT_FINDINGS = 79;

const COLOR = { Error: 'red', Warning: 'yellow', Info: 'dim' } as const;

export async function analyzeCommand(argv: string[]): Promise<number> {
  const { values, format } = parse('analyze', argv, {
    filename: { type: 'string', short: 'f', multiple: true },
    'failure-threshold': { type: 'string' },
    'root-namespace': { type: 'string' },
  });
  if (values.help) return void process.stdout.write(ANALYZE_HELP), 0;
  const paths = (values.filename as unknown as string[] | undefined) ?? [];
  if (paths.length === 0) throw new WeftConfigError('weft analyze', 'give the files to analyze with -f FILE|DIR; see weft analyze --help');
  for (const p of paths) if (!existsSync(p)) throw new WeftConfigError(`weft analyze -f ${p}`, 'no such file or directory');
  const threshold = (values['failure-threshold'] as string | undefined) ?? 'Error';
  if (!(LEVELS as string[]).includes(threshold)) throw new WeftConfigError('--failure-threshold', `"${threshold}" is not a level: use Error, Warning or Info`);
  const findings = analyze(paths.flatMap(filesOf), { ...(values['root-namespace'] ? { rootNamespace: values['root-namespace'] as string } : {}) });
  const o = stdout();
  if (format === 'json' || format === 'yaml') o.write(structured(format, findings));
  else if (findings.length === 0) o.write('✔ No problems found.\n');
  else o.write(table(o, ['LEVEL', 'CODE', 'OBJECT', 'WHERE', 'MESSAGE'], findings.map((f): Cell[] => [{ text: f.level, color: COLOR[f.level] }, f.code, f.object, f.origin, f.message])));
  const worst = LEVELS.indexOf(threshold as Level);
  return findings.some((f) => LEVELS.indexOf(f.level) <= worst) ? EXIT_FINDINGS : 0;
}
