// The command table. Each area registers its commands here (one line each), pointing at its module.
import { registerCommand } from './registry.js';

registerCommand('version', 'client, controller and agent versions: weft version [--client]', async () => (await import('./inspect.js')).versionCommand);
registerCommand('stat', 'golden metrics per workload and Service: weft stat [ns[/workload|svc]]', async () => (await import('./stat.js')).statCommand);
registerCommand('tap', 'live requests as the proxies see them: weft tap [ns[/workload]] [--to ..] [--path ..] [-o json]', async () => (await import('./tap.js')).tapCommand);
registerCommand('top', 'the busiest paths, live: weft top [ns[/workload]] [-o json]', async () => (await import('./top.js')).topCommand);
registerCommand('config', 'what an agent holds: weft config dump [node] workloads|services|policies|routes|certs|connections', async () => (await import('./inspect.js')).configCommand);
registerCommand('certs', 'workload certificates and trust bundle on every agent, with expiry', async () => (await import('./inspect.js')).certsCommand);
registerCommand('analyze', 'check YAML files offline, before applying them: weft analyze -f FILE|DIR', async () => (await import('./analyze.js')).analyzeCommand);
registerCommand('check', 'is this machine ready (--pre), is the mesh healthy: agents, config ACK, certs, capture', async () => (await import('./check.js')).checkCommand);
registerCommand('policy', 'policies and their status: weft policy status [ns]', async () => (await import('./inspect.js')).policyCommand);
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
