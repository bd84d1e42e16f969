// `weft agent`: parse flags, run the agent until SIGTERM/SIGINT, drain, exit.
import { createLogger } from '../common/log.js';
import { AGENT_USAGE, parseAgentFlags } from './flags.js';
import { runAgent } from './main.js';

export async function agentCommand(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(AGENT_USAGE);
    return 0;
  }
  const opts = parseAgentFlags(argv, process.env);
  // the pid tells an agent from its successor while both run on the node during a restart
  const log = createLogger({ component: 'agent', fields: opts.node ? { node: opts.node, pid: process.pid } : { pid: process.pid } });
  // One connection's bug must not take the node's traffic down with it: runAgent counts uncaught errors
  // (lifecycle/crash-budget.ts), logs them and keeps serving until a burst of them makes it not live.
  const agent = await runAgent(opts, log);
  if (opts.uninstall) return 0;
  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (sig: string) => {
      if (stopping) {
        log.warn('second signal: exiting now', { signal: sig });
        process.exit(1);
      }
      stopping = true;
      log.info('signal received, draining', { signal: sig });
      agent.stop().then(resolve, (e: unknown) => {
        log.error('drain failed', { error: e });
        resolve();
      });
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
  });
  // Everything is closed; do not let a stray timer in a dependency keep a drained agent alive.
  setTimeout(() => process.exit(0), 1000).unref();
  return 0;
}
