// Starts a process inside the sandbox the way a container runtime would: it first joins its cgroup (so
// eBPF attached to the node's cgroup subtree sees it from its very first connect), then enters the
// pod's network, mount and UTS namespaces with nsenter, then execs the program unmodified. nsenter
// --net does not remount /sys the way `ip netns exec` does, so cgroupfs stays visible.
import { type ChildProcess, spawn, type StdioOptions } from 'node:child_process';

export interface EnterTarget {
  cgroup: string;
  /** netns name under /run/netns */
  netns?: string;
  /** bind-mounted namespace files */
  mntns?: string;
  utsns?: string;
  /** working directory, resolved before entering the mount namespace */
  cwd?: string;
}

// $0 is the cgroup directory; "$@" the nsenter command line. `exec` keeps one pid from sh to the program.
const JOIN_THEN_EXEC = 'echo $$ > "$0/cgroup.procs" && exec "$@"';

/** The argv (for spawn) that runs `argv` inside `target`. */
export function enterArgv(target: EnterTarget, argv: string[]): string[] {
  const ns: string[] = [];
  if (target.netns) ns.push(`--net=/run/netns/${target.netns}`);
  if (target.mntns) ns.push(`--mount=${target.mntns}`);
  if (target.utsns) ns.push(`--uts=${target.utsns}`);
  if (target.cwd) ns.push(`--wd=${target.cwd}`);
  const inner = ns.length > 0 ? ['nsenter', ...ns, '--', ...argv] : argv;
  return ['sh', '-c', JOIN_THEN_EXEC, target.cgroup, ...inner];
}

export interface EnterOptions {
  env: NodeJS.ProcessEnv;
  stdio: StdioOptions;
  /** own session: survives the `up` process and its terminal's Ctrl-C */
  detached: boolean;
}

export function spawnIn(target: EnterTarget, argv: string[], opts: EnterOptions): ChildProcess {
  const [file, ...args] = enterArgv(target, argv);
  return spawn(file!, args, { env: opts.env, stdio: opts.stdio, detached: opts.detached });
}
