// `weft` command dispatcher. Each subcommand lives in its own module and is loaded lazily, so
// `weft sandbox status` does not pay for loading the proxy.
import { errorMessage, isWeftError } from '../common/errors.js';

import { COMMANDS } from './registry.js';
import './commands.js';

function usage(): string {
  const rows = [...COMMANDS.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([n, c]) => `  ${n.padEnd(12)} ${c.summary}`);
  return `usage: weft <command> [args]\n\ncommands:\n${rows.join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const cmd = COMMANDS.get(name);
  if (!cmd) {
    process.stderr.write(`weft: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const run = await cmd.load();
  const code = await run(rest);
  return typeof code === 'number' ? code : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`weft: ${errorMessage(err)}\n`);
    if (!isWeftError(err) && err instanceof Error && err.stack && process.env.WEFT_DEBUG) process.stderr.write(err.stack + '\n');
    process.exitCode = 1;
  },
);
