// `weft controller`: run the controller. Flags are parsed here into ControllerOptions; controller/main.ts
// wires the parts.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

import { WeftConfigError } from '../common/errors.js';
import { createLogger, type LogLevel } from '../common/log.js';
import { DEFAULT_TRUST_DOMAIN } from '../common/mesh.js';
import { PORTS } from '../common/ports.js';
import { BootstrapTokenAuthenticator, TokenReviewAuthenticator, type NodeAuthenticator } from './grpc/node-auth.js';
import { DEFAULT_ROOT_NAMESPACE, startController, type ControllerOptions } from './main.js';
import { parseFlags } from './flags.js';
import type { RootStore } from './ca/root-store.js';

export const CONTROLLER_HELP = `usage: weft controller [flags]

Runs the Weft controller: the mesh CA, the workload sources and config streaming to node agents.

flags:
  --config-dir DIR            watch a directory of Kubernetes YAML (Pods, Services, EndpointSlices,
                              Namespaces, weft.io/v1alpha1 policies, HTTPRoutes); multi-document files
  --state-dir DIR             CA root and trust bundle (default /var/lib/weft/controller)
  --grpc-listen HOST:PORT     agent endpoint, TLS (default 0.0.0.0:${PORTS.controllerGrpc})
  --web-listen HOST:PORT      operator HTTP API and web page (default 0.0.0.0:${PORTS.controllerWeb})
  --bootstrap-tokens FILE     node authentication by per-node tokens: {"node-1": "token", ...} (sandbox)
  --kubernetes                watch the Kubernetes API (Pods, Services, EndpointSlices, Namespaces, Nodes, CRDs),
                              authenticate agents by TokenReview of their projected tokens, keep the CA
                              root in the Secret weft-ca-root and publish the trust bundle in the
                              ConfigMap weft-trust-bundle (in-cluster config or KUBECONFIG)
  --agent-service-account NS:NAME  the agents' service account for TokenReview (default ${DEFAULT_ROOT_NAMESPACE}:weft-agent)
  --token-audience AUD        audience of the agents' projected tokens (default weft-controller)
  --trust-domain TD           SPIFFE trust domain (default ${DEFAULT_TRUST_DOMAIN})
  --ca-cert FILE --ca-key FILE  use the operator's CA (PEM, ECDSA P-256/P-384) instead of generating one
  --cert-ttl DURATION         workload certificate lifetime, e.g. 24h, 90m, 30s (default 24h)
  --operator-token-file FILE  bearer token required by POST /api/v1/apply and /delete (default: loopback only)
  --server-name NAME          extra DNS name in the controller's certificate (repeatable)
  --server-ip IP              extra IP in the controller's certificate (repeatable)
  --root-namespace NS         namespace whose selector-less PeerAuthentication applies mesh-wide (default ${DEFAULT_ROOT_NAMESPACE})
  --crd-dir DIR               CRD manifests whose schemas validate weft.io objects (default daemonset/crds)
  --scrape-agents             scrape every node agent's metrics (node IP, port 15020) for the golden metrics
                              API (/api/v1/stat, weft stat, the page) when no Prometheus is given
  --prometheus URL            read traffic metrics from this Prometheus (as linkerd viz does)
  --log-level LEVEL           debug|info|warn|error (default info, or WEFT_LOG_LEVEL)
  -h, --help                  this help
`;

export function parseDuration(s: string, where: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  let total = 0;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(s))) {
    total += Number(m[1]) * unit[m[2]!]!;
    consumed = re.lastIndex;
  }
  if (consumed !== s.length || total <= 0) throw new WeftConfigError(where, `"${s}" is not a duration like 24h, 90m, 30s or 500ms`);
  return total;
}

export function parseHostPort(s: string, where: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new WeftConfigError(where, `"${s}" is not HOST:PORT (e.g. 0.0.0.0:15012 or [::]:15012)`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

const KNOWN = new Set([
  'config-dir', 'state-dir', 'grpc-listen', 'web-listen', 'bootstrap-tokens', 'kubernetes', 'agent-service-account', 'token-audience',
  'trust-domain', 'ca-cert', 'ca-key', 'cert-ttl', 'operator-token-file', 'server-name', 'server-ip', 'root-namespace', 'crd-dir', 'log-level', 'help', 'h', 'scrape-agents', 'prometheus',
]);

export async function runControllerCommand(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, { bool: ['kubernetes', 'help', 'h', 'scrape-agents'], multi: ['server-name', 'server-ip'] });
  if (flags.has('help') || flags.has('h')) {
    process.stdout.write(CONTROLLER_HELP);
    return 0;
  }
  for (const k of flags.keys()) if (!KNOWN.has(k)) throw new WeftConfigError(`flag --${k}`, 'is not a weft controller flag; see weft controller --help');
  const one = (k: string) => flags.get(k)?.[0];
  const level = one('log-level') as LogLevel | undefined;
  if (level && !['debug', 'info', 'warn', 'error'].includes(level)) throw new WeftConfigError('flag --log-level', `"${level}" is not debug, info, warn or error`);
  const log = createLogger({ component: 'controller', ...(level ? { level } : {}) });
  const rootNamespace = one('root-namespace') ?? DEFAULT_ROOT_NAMESPACE;
  const grpc = parseHostPort(one('grpc-listen') ?? `0.0.0.0:${PORTS.controllerGrpc}`, 'flag --grpc-listen');
  const web = parseHostPort(one('web-listen') ?? `0.0.0.0:${PORTS.controllerWeb}`, 'flag --web-listen');
  if ((one('ca-cert') === undefined) !== (one('ca-key') === undefined)) throw new WeftConfigError('flags --ca-cert/--ca-key', 'give both or neither');

  let authenticator: NodeAuthenticator;
  let rootStore: RootStore | undefined;
  let trustBundlePublisher: ControllerOptions['trustBundlePublisher'];
  let kubeSource: import('./sources/kubernetes.js').KubernetesSource | undefined;
  if (flags.has('kubernetes')) {
    const k8s = await import('@kubernetes/client-node');
    const { KubernetesSecretRootStore } = await import('./ca/kubernetes-secret-store.js');
    const kc = new k8s.KubeConfig();
    kc.loadFromDefault();
    const [saNs, saName] = (one('agent-service-account') ?? `${rootNamespace}:weft-agent`).split(':');
    if (!saNs || !saName) throw new WeftConfigError('flag --agent-service-account', 'must be NAMESPACE:NAME');
    authenticator = new TokenReviewAuthenticator(kc.makeApiClient(k8s.AuthenticationV1Api), {
      audience: one('token-audience') ?? 'weft-controller',
      agentUser: `system:serviceaccount:${saNs}:${saName}`,
    });
    // every replica watches the CA Secret: a rotation done by one is adopted by all (controller/main.ts)
    rootStore = new KubernetesSecretRootStore(kc.makeApiClient(k8s.CoreV1Api), rootNamespace, 'weft-ca-root', new k8s.Watch(kc), log.child('ca'));
    const { KubernetesTrustBundlePublisher } = await import('./ca/kubernetes-trust-bundle.js');
    const { LeaseElector } = await import('./ha/lease.js');
    const { LeaderGatedPublisher } = await import('./ha/leader-gated.js');
    // replicas elect a leader with the Lease weft-controller; only it writes the trust bundle ConfigMap
    const gated = new LeaderGatedPublisher(new KubernetesTrustBundlePublisher({ api: kc.makeApiClient(k8s.CoreV1Api), namespace: rootNamespace, logger: log.child('trust-bundle') }));
    const elector = new LeaseElector({
      api: kc.makeApiClient(k8s.CoordinationV1Api),
      namespace: rootNamespace,
      name: 'weft-controller',
      identity: process.env.POD_NAME || hostname(),
      onStartedLeading: () => gated.setLeader(true),
      onStoppedLeading: () => gated.setLeader(false),
      logger: log.child('lease'),
    });
    gated.onClose(() => elector.stop());
    elector.start();
    trustBundlePublisher = gated;
    const { KubernetesSource } = await import('./sources/kubernetes.js');
    kubeSource = new KubernetesSource({ kubeConfig: kc, logger: log.child('kubernetes') });
  } else if (one('bootstrap-tokens')) {
    authenticator = BootstrapTokenAuthenticator.fromFile(one('bootstrap-tokens')!);
  } else {
    throw new WeftConfigError('weft controller', 'needs a way to authenticate agents: --bootstrap-tokens FILE (sandbox) or --kubernetes');
  }

  const opts: ControllerOptions = {
    trustDomain: one('trust-domain') ?? DEFAULT_TRUST_DOMAIN,
    stateDir: one('state-dir') ?? '/var/lib/weft/controller',
    grpcHost: grpc.host,
    grpcPort: grpc.port,
    webHost: web.host,
    webPort: web.port,
    authenticator,
    rootNamespace,
    logger: log,
    ...(rootStore ? { rootStore } : {}),
    ...(trustBundlePublisher ? { trustBundlePublisher } : {}),
    ...(kubeSource ? { sources: [kubeSource], statusProviders: { kubernetes: () => kubeSource!.status() } } : {}),
    ...(one('config-dir') ? { configDir: one('config-dir')! } : {}),
    ...(one('ca-cert') ? { caCertFile: one('ca-cert')!, caKeyFile: one('ca-key')! } : {}),
    ...(one('cert-ttl') ? { leafTtlMs: parseDuration(one('cert-ttl')!, 'flag --cert-ttl') } : {}),
    ...(one('operator-token-file') ? { operatorToken: readFileSync(one('operator-token-file')!, 'utf8').trim() } : {}),
    ...(flags.get('server-name') ? { serverDnsNames: flags.get('server-name')! } : {}),
    ...(flags.has('scrape-agents') ? { scrapeAgents: { port: PORTS.metrics } } : {}),
    ...(one('prometheus') ? { prometheusUrl: one('prometheus')! } : {}),
    ...(flags.get('server-ip') ? { serverIps: flags.get('server-ip')! } : {}),
    ...(one('crd-dir') ? { crdDir: one('crd-dir')! } : {}),
  };
  const handle = await startController(opts);
  process.stdout.write(`weft controller: gRPC on ${grpc.host}:${handle.grpcPort}, web on ${web.host}:${handle.webPort}, trust bundle ${handle.trustBundleFile}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  log.info('shutting down');
  await handle.close();
  return 0;
}
