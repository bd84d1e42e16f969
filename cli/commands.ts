// The command table. Each area registers its commands here (one line each), pointing at its module.
import { registerCommand } from './registry.js';

registerCommand('version', 'print the Weft version', async () => async () => {
  const { readFileSync } = await import('node:fs');
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  process.stdout.write(`weft ${pkg.version}\n`);
});
registerCommand('capture', 'inspect or remove the eBPF capture: capture status|uninstall [--bpffs DIR]', async () => (await import('../agent/redirect/cli.js')).captureCommand);
registerCommand('sandbox', 'a real multi-node mesh on this machine: up, status, exec, logs, down', async () => (await import('../sandbox/cli.js')).sandboxCommand);
registerCommand('controller', 'run the controller (CA, workload sources, config streaming to agents)', async () => (await import('../controller/cli.js')).runControllerCommand);
registerCommand('apply', 'add or replace objects in a running controller: weft apply -f FILE|DIR', async () => {
  const { runApplyCommand } = await import('../controller/apply-cli.js');
  return (argv) => runApplyCommand('apply', argv);
});
registerCommand('delete', 'remove objects from a running controller: weft delete -f FILE|DIR', async () => {
  const { runApplyCommand } = await import('../controller/apply-cli.js');
  return (argv) => runApplyCommand('delete', argv);
});
registerCommand('node-cleanup', 'remove Weft\'s pinned eBPF state from this node (--if-uninstalling: only when the DaemonSet is deleted)', async () => (await import('../agent/kubernetes/node-cleanup-command.js')).default);
registerCommand('agent', 'run the node agent: eBPF capture, node proxy, metrics/health/admin (weft agent --help)', async () => (await import('../agent/cli.js')).agentCommand);
