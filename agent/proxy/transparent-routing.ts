// Policy routing for transparent sockets (transparent.ts), in the network namespace the agent runs in: a
// reply from a pod to the caller's address must reach the proxy's socket bound to that address, not be
// forwarded to the caller. The standard TPROXY recipe: mark packets that belong to a local transparent
// socket (iptables mangle `-m socket --transparent`), and route marked packets to the local table.
//   iptables -t mangle -A PREROUTING -m socket --transparent -j MARK --set-xmark MARK/MARK
//   ip rule add fwmark MARK/MARK lookup TABLE
//   ip route replace local 0.0.0.0/0 dev lo table TABLE          (and the IPv6 equivalents)
// Only ever applied where the agent runs as the node (Kubernetes, hostNetwork) or in a sandbox node's
// namespace Weft created: the agent enables it with --transparent-source, which the sandbox passes.
// Idempotent: a restarted agent finds its chain and rule and leaves them.
import { execFileSync } from 'node:child_process';

import type { Logger } from '../../common/log.js';

export const TPROXY_MARK = 0x5e1;
export const TPROXY_TABLE = 1501;
const CHAIN = 'WEFT-TRANSPARENT';

type Run = (cmd: string, args: string[]) => string;
const defaultRun: Run = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function tryRun(run: Run, cmd: string, args: string[]): boolean {
  try {
    run(cmd, args);
    return true;
  } catch {
    return false;
  }
}

function family(run: Run, v6: boolean): void {
  const ipt = v6 ? 'ip6tables' : 'iptables';
  const ip = v6 ? ['-6'] : ['-4'];
  const mark = `0x${TPROXY_MARK.toString(16)}/0x${TPROXY_MARK.toString(16)}`;
  // our own chain, hooked once into PREROUTING
  if (!tryRun(run, ipt, ['-w', '-t', 'mangle', '-L', CHAIN, '-n'])) run(ipt, ['-w', '-t', 'mangle', '-N', CHAIN]);
  run(ipt, ['-w', '-t', 'mangle', '-F', CHAIN]);
  run(ipt, ['-w', '-t', 'mangle', '-A', CHAIN, '-m', 'socket', '--transparent', '-j', 'MARK', '--set-xmark', mark]);
  if (!tryRun(run, ipt, ['-w', '-t', 'mangle', '-C', 'PREROUTING', '-p', 'tcp', '-j', CHAIN])) run(ipt, ['-w', '-t', 'mangle', '-I', 'PREROUTING', '-p', 'tcp', '-j', CHAIN]);
  const rules = run('ip', [...ip, 'rule', 'show']);
  if (!rules.includes(`lookup ${TPROXY_TABLE}`)) run('ip', [...ip, 'rule', 'add', 'fwmark', mark, 'lookup', String(TPROXY_TABLE), 'pref', String(TPROXY_TABLE)]);
  run('ip', [...ip, 'route', 'replace', 'local', v6 ? '::/0' : '0.0.0.0/0', 'dev', 'lo', 'table', String(TPROXY_TABLE)]);
}

/** Sets up the policy routing; returns which families work (IPv6 is best effort). Throws if IPv4 fails. */
export function setupTransparentRouting(log: Logger, run: Run = defaultRun): { ipv4: boolean; ipv6: boolean } {
  family(run, false);
  let ipv6 = true;
  try {
    family(run, true);
  } catch (e) {
    ipv6 = false;
    log.warn('transparent source: IPv6 policy routing unavailable; IPv6 pods see the node address', { error: e });
  }
  log.info('transparent source routing ready', { mark: `0x${TPROXY_MARK.toString(16)}`, table: TPROXY_TABLE, ipv6 });
  return { ipv4: true, ipv6 };
}
