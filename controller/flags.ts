// Command-line flags of `weft controller`, `weft apply` and `weft delete`. Its own module, with no imports
// beyond the error class, so `weft apply` does not load the controller (gRPC, the CA, metrics) to read its
// flags: that load was most of the command's 400 ms.
import { WeftConfigError } from '../common/errors.js';

/** --flag value / --flag=value / boolean --flag; repeatable flags collect into arrays */
export function parseFlags(argv: string[], spec: { bool: string[]; multi?: string[] }): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) throw new WeftConfigError(`argument "${a}"`, 'unexpected; see --help');
    let [name, value] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    name = name!.replace(/^--?/, '');
    if (spec.bool.includes(name)) {
      out.set(name, ['true']);
      continue;
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new WeftConfigError(`flag --${name}`, 'needs a value');
    }
    if (spec.multi?.includes(name)) out.set(name, [...(out.get(name) ?? []), value]);
    else out.set(name, [value]);
  }
  return out;
}
