// `weft agent` flags → validated AgentOptions. Parsed from an argv array and an environment map, so tests
// never touch process.argv or process.env; every bad flag is refused by name before anything starts.
import { isIP } from 'node:net';
import { WeftConfigError } from '../common/errors.js';
import { DEFAULT_TRUST_DOMAIN } from '../common/mesh.js';
import { PORTS } from '../common/ports.js';
import { resolveNodeName } from './kubernetes/node-name.js';
import { DEFAULT_PIN_DIR } from './redirect/uninstall.js';
import { tracingFlags, type TracingFlags } from './observe/tracing-flags.js';

export type CgroupLayout = 'sandbox' | 'kubepods';

export interface AgentOptions {
  node: string;
  nodeIp: string;
  /** host:port of the controller's gRPC endpoint */
  controller: string;
  controllerCaFile: string;
  tokenFile: string;
  cgroupRoot: string | undefined;
  cgroupLayout: CgroupLayout;
  /** capture's pin directory */
  bpffs: string;
  stateDir: string;
  /** address of the outbound listener (where capture sends connections) */
  outboundIp: string;
  trustDomain: string;
  uninstall: boolean;
  /** connect to local pods from the caller's pod address (IP_TRANSPARENT + policy routing in this netns) */
  transparentSource: boolean;
  /** SIGTERM: how long open connections (long TCP streams, WebSockets, gRPC streams) may finish (ms) */
  drainTimeoutMs: number;
  /** spans per proxy hop, exported over OTLP/HTTP; undefined: tracing off (trace headers pass as they came) */
  tracing: TracingFlags | undefined;
  /** listener addresses; defaults from the design's port table */
  listen: { outbound: number; inbound: number; admin: number; metrics: number; health: number };
}

export const AGENT_USAGE = `usage: weft agent --node NAME --node-ip IP --controller HOST:PORT --controller-ca FILE --token-file FILE
                  [--cgroup-root PATH] [--cgroup-layout sandbox|kubepods] [--bpffs DIR] [--state-dir DIR]
                  [--outbound-ip IP] [--trust-domain DOMAIN] [--transparent-source] [--drain-timeout SECONDS]
                  [--trace-collector URL [--trace-sampling PERCENT]]
       weft agent --uninstall [--bpffs DIR]

Runs the node agent: eBPF capture, the node proxy (15001 outbound, 15008 tunnel), metrics (15020),
health (15021) and admin (127.0.0.1:15000). --node defaults to $NODE_NAME. On SIGTERM the agent hands
its listeners to a successor (or keeps accepting if there is none) and lets open connections finish for
--drain-timeout seconds (default 20; keep it below the pod's terminationGracePeriodSeconds).
--trace-collector turns tracing on: one span per proxy hop, exported over OTLP/HTTP (protobuf) to URL
(e.g. http://otel-collector:4318/v1/traces); requests whose caller did not decide are sampled at
--trace-sampling percent (default 1).
`;

const VALUE_FLAGS = new Set(['--node', '--node-ip', '--controller', '--controller-ca', '--token-file', '--cgroup-root', '--cgroup-layout', '--bpffs', '--state-dir', '--outbound-ip', '--trust-domain', '--drain-timeout', '--trace-collector', '--trace-sampling']);

export function parseAgentFlags(argv: string[], env: Readonly<Record<string, string | undefined>>): AgentOptions {
  const v = new Map<string, string>();
  let uninstall = false;
  let transparentSource = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const [name, inline] = eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    if (name === '--uninstall') {
      uninstall = true;
      continue;
    }
    if (name === '--transparent-source') {
      transparentSource = true;
      continue;
    }
    if (!VALUE_FLAGS.has(name)) throw new WeftConfigError(name, `unknown flag for weft agent\n\n${AGENT_USAGE}`);
    const value = inline ?? argv[++i];
    if (value === undefined || value === '') throw new WeftConfigError(name, 'needs a value');
    v.set(name, value);
  }
  const bpffs = v.get('--bpffs') ?? DEFAULT_PIN_DIR;
  const listen = { outbound: PORTS.outbound, inbound: PORTS.inboundTunnel, admin: PORTS.admin, metrics: PORTS.metrics, health: PORTS.health };
  if (uninstall) {
    return { node: '', nodeIp: '', controller: '', controllerCaFile: '', tokenFile: '', cgroupRoot: undefined, cgroupLayout: 'sandbox', bpffs, stateDir: '', outboundIp: '', trustDomain: DEFAULT_TRUST_DOMAIN, uninstall, drainTimeoutMs: 20_000, transparentSource, tracing: undefined, listen };
  }
  const need = (flag: string, what: string) => {
    const x = v.get(flag);
    if (!x) throw new WeftConfigError(flag, `missing: ${what}\n\n${AGENT_USAGE}`);
    return x;
  };
  const node = resolveNodeName(env, v.get('--node'));
  const nodeIp = need('--node-ip', "this node's IP, where other nodes' proxies reach its tunnel (15008)");
  if (!isIP(nodeIp)) throw new WeftConfigError('--node-ip', `"${nodeIp}" is not an IP address`);
  const outboundIp = v.get('--outbound-ip') ?? nodeIp;
  if (!isIP(outboundIp)) throw new WeftConfigError('--outbound-ip', `"${outboundIp}" is not an IP address`);
  const controller = need('--controller', 'the controller gRPC address HOST:PORT (or IP:PORT,IP:PORT,... for several replicas)');
  const replicas = controller.split(',');
  for (const r of replicas) {
    if (!/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/.test(r)) throw new WeftConfigError('--controller', `"${r}" is not HOST:PORT`);
    if (replicas.length > 1 && !isIP(r.slice(0, r.lastIndexOf(':')).replace(/^\[|\]$/g, ''))) {
      throw new WeftConfigError('--controller', `"${r}": a list of controller replicas takes IP:PORT entries (a name resolving to several replicas is one HOST:PORT, e.g. the Service)`);
    }
  }
  const layout = v.get('--cgroup-layout') ?? 'kubepods';
  if (layout !== 'sandbox' && layout !== 'kubepods') throw new WeftConfigError('--cgroup-layout', `"${layout}" is neither sandbox nor kubepods`);
  const drain = Number(v.get('--drain-timeout') ?? 20);
  if (!(drain >= 0 && drain <= 3600)) throw new WeftConfigError('--drain-timeout', `"${v.get('--drain-timeout')}" is not a number of seconds between 0 and 3600`);
  const cgroupRoot = v.get('--cgroup-root');
  if (layout === 'sandbox' && !cgroupRoot) throw new WeftConfigError('--cgroup-root', 'the sandbox layout needs the cgroup directory that holds the node\'s pods');
  return {
    node,
    nodeIp,
    controller,
    controllerCaFile: need('--controller-ca', 'PEM file of the mesh CA the controller\'s certificate chains to'),
    tokenFile: need('--token-file', 'file holding this node\'s bootstrap or ServiceAccount token'),
    cgroupRoot,
    cgroupLayout: layout,
    bpffs,
    stateDir: v.get('--state-dir') ?? '/var/lib/weft',
    outboundIp,
    trustDomain: v.get('--trust-domain') ?? DEFAULT_TRUST_DOMAIN,
    uninstall,
    transparentSource,
    drainTimeoutMs: drain * 1000,
    tracing: tracingFlags(v.get('--trace-collector'), v.get('--trace-sampling')),
    listen,
  };
}
