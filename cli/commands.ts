// The command table. Each area registers its commands here (one line each), pointing at its module.
import { registerCommand } from './registry.js';

registerCommand('version', 'print the Weft version', async () => async () => {
  const { readFileSync } = await import('node:fs');
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  process.stdout.write(`weft ${pkg.version}\n`);
});
registerCommand('capture', 'inspect or remove the eBPF capture: capture status|uninstall [--bpffs DIR]', async () => (await import('../agent/redirect/cli.js')).captureCommand);
registerCommand('sandbox', 'a real multi-node mesh on this machine: up, status, exec, logs, down', async () => (await import('../sandbox/cli.js')).sandboxCommand);
