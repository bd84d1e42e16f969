// The controller's composition root: CA, object store, sources, translator/publisher, the gRPC service for
// agents (15012) and the HTTP port for operators (15014). Everything is built here and passed down; no
// module reaches for globals. `weft controller` (controller/cli.ts) parses flags into ControllerOptions.
//
// HTTP (15014): the operator web page and read API (controller/web) own the server; the admin write API
// (controller/api/admin.ts: POST /api/v1/apply, /api/v1/delete) and any `httpHandlers` answer first.
import { mkdir, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';

import type { Logger } from '../common/log.js';
import { createLogger } from '../common/log.js';
import { AgentRegistry } from './agents/registry.js';
import { createAdminHandler, type HttpHandler } from './api/admin.js';
import { createMetricsHandler } from './api/metrics.js';
import { createObserveHandler } from './api/observe.js';
import { createTapHandler } from './api/tap.js';
import { TapBroker } from './tap/broker.js';
import { PrometheusClient } from './telemetry/prometheus.js';
import { AgentScraper } from './telemetry/scraper.js';
import { ConfigTimingMetrics } from './telemetry/config-timing.js';
import { CertificateAuthority } from './ca/authority.js';
import { CsrAuthorizer } from './ca/csr-authorizer.js';
import { DirectoryRootStore, readOperatorRoot, type RootStore } from './ca/root-store.js';
import { ControllerGrpcServer } from './grpc/server.js';
import type { NodeAuthenticator } from './grpc/node-auth.js';
import { LocalDirectorySource } from './sources/local-directory.js';
import type { Source } from './sources/types.js';
import { loadCrdSchemas } from './store/crd-schemas.js';
import { BUILTIN_KINDS, KindRegistry } from './store/kinds.js';
import { ObjectStore } from './store/object-store.js';
import { ConfigPublisher } from './translate/publisher.js';
import { createWebServer, type StatusProvider } from './web/server.js';
import { routeStatuses } from './translate/policy/route-status.js';

export const DEFAULT_ROOT_NAMESPACE = 'weft-system';
export const CONTROLLER_SERVICE_ACCOUNT = 'weft-controller';
/** where the repository keeps the CRD manifests (compiled file: dist/controller/main.js) */
export const DEFAULT_CRD_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'daemonset', 'crds');

export interface ControllerOptions {
  trustDomain: string;
  /** CA root, trust bundle and other state (when the CA is not kept in a Kubernetes Secret) */
  stateDir: string;
  /** a directory of YAML objects to watch (the local source) */
  configDir?: string;
  grpcHost: string;
  grpcPort: number;
  webHost: string;
  webPort: number;
  authenticator: NodeAuthenticator;
  /** where the CA root lives; default a directory under stateDir */
  rootStore?: RootStore;
  /** also publishes the trust bundle elsewhere (--kubernetes: the ConfigMap the agent DaemonSet mounts) */
  trustBundlePublisher?: { publish(pem: string): Promise<void>; close(): void };
  /** an operator-supplied root (PEM files) instead of a generated one */
  caCertFile?: string;
  caKeyFile?: string;
  leafTtlMs?: number;
  /** bearer token required for the admin write API; without one only loopback may write */
  operatorToken?: string;
  /** extra names in the controller's serving certificate (agents verify its SPIFFE ID, not these) */
  serverDnsNames?: string[];
  serverIps?: string[];
  rootNamespace?: string;
  crdDir?: string;
  /** more workload sources (the Kubernetes informers) */
  sources?: Source[];
  /** more HTTP handlers on the web port, tried after the admin API and before the operator page */
  httpHandlers?: HttpHandler[];
  /** extra status sections on the operator page and /api/v1/status (e.g. the Kubernetes source) */
  statusProviders?: Record<string, StatusProvider>;
  debounceMs?: number;
  logger?: Logger;
  /** scrape every node's agent metrics (http://<node ip>:<port>/metrics) for the golden metrics API */
  scrapeAgents?: { port: number; intervalMs?: number };
  /** read traffic metrics from this Prometheus (preferred over scraping) */
  prometheusUrl?: string;
}

export interface ControllerHandle {
  ca: CertificateAuthority;
  store: ObjectStore;
  publisher: ConfigPublisher;
  registry: AgentRegistry;
  grpc: ControllerGrpcServer;
  /** the watched --config-dir source, when there is one */
  localSource: LocalDirectorySource | undefined;
  grpcPort: number;
  webPort: number;
  /** PEM file agents can be given as their initial trust bundle; rewritten on rotation */
  trustBundleFile: string;
  controllerIdentity: string;
  close(): Promise<void>;
}

export async function startController(opts: ControllerOptions): Promise<ControllerHandle> {
  const log = opts.logger ?? createLogger({ component: 'controller' });
  const rootNamespace = opts.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  await mkdir(opts.stateDir, { recursive: true, mode: 0o700 });

  const operatorRoot = opts.caCertFile && opts.caKeyFile ? await readOperatorRoot(opts.caCertFile, opts.caKeyFile) : undefined;
  const rootStore = opts.rootStore ?? new DirectoryRootStore(join(opts.stateDir, 'ca'));
  const ca = await CertificateAuthority.open({
    trustDomain: opts.trustDomain,
    store: rootStore,
    ...(operatorRoot ? { operatorRoot } : {}),
    ...(opts.leafTtlMs ? { leafTtlMs: opts.leafTtlMs } : {}),
    logger: log.child('ca'),
  });
  // Replicas share the root (a Kubernetes Secret, or one directory in the sandbox): a rotation done by one is
  // seen by all through the store's watch, so any replica signs CSRs with the current root. An operator's
  // own root (files) is not shared state and is not watched.
  const stopRootWatch =
    !operatorRoot && rootStore.watch
      ? rootStore.watch((state) => {
          ca.adopt(state, rootStore.describe()).catch((e: unknown) => log.error('cannot adopt the stored CA state', { from: rootStore.describe(), err: e }));
        })
      : () => undefined;
  const trustBundleFile = join(opts.stateDir, 'trust-bundle.pem');
  const writeBundle = () => writeFile(trustBundleFile, ca.trustBundlePem()).catch((e: unknown) => log.error('cannot write trust bundle', { err: e }));
  await writeBundle();
  ca.onChange(() => void writeBundle());
  const bundlePublisher = opts.trustBundlePublisher;
  if (bundlePublisher) {
    await bundlePublisher.publish(ca.trustBundlePem());
    ca.onChange(() => void bundlePublisher.publish(ca.trustBundlePem()));
  }

  const kinds = new KindRegistry(BUILTIN_KINDS);
  loadCrdSchemas(opts.crdDir ?? DEFAULT_CRD_DIR, kinds, log.child('crds'));
  const store = new ObjectStore(kinds, log.child('store'));
  const registry = new AgentRegistry();

  const sources: Source[] = [...(opts.sources ?? [])];
  const localSource = opts.configDir ? new LocalDirectorySource({ dir: opts.configDir, logger: log.child('local') }) : undefined;
  if (localSource) sources.unshift(localSource);
  for (const s of sources) await s.start(store);

  const publisher = new ConfigPublisher(store, { trustDomain: opts.trustDomain, rootNamespace, debounceMs: opts.debounceMs ?? 100, logger: log.child('publisher') });
  const authorizer = new CsrAuthorizer(ca, store, log.child('csr'));
  const metrics = new Registry();
  const timing = new ConfigTimingMetrics(metrics, log.child('config-timing'));
  publisher.onConfig((v) => timing.version(v));
  const taps = new TapBroker(log.child('tap'));
  const grpc = new ControllerGrpcServer({ ca, authorizer, publisher, registry, authenticator: opts.authenticator, logger: log.child('grpc'), onAnswer: (a) => timing.answered(a), tap: taps });
  const controllerIdentity = `spiffe://${opts.trustDomain}/ns/${rootNamespace}/sa/${CONTROLLER_SERVICE_ACCOUNT}`;
  // The serving certificate lives a year (clamped to the root) and is re-issued at every start; agents
  // check its SPIFFE ID against the trust bundle, so names and IPs are a convenience for other clients.
  const issueServing = () =>
    ca.issueWithNewKey({
      uris: [controllerIdentity],
      dnsNames: ['localhost', 'weft-controller', `weft-controller.${rootNamespace}`, `weft-controller.${rootNamespace}.svc`, ...(opts.serverDnsNames ?? [])],
      ips: ['127.0.0.1', '::1', ...(opts.serverIps ?? [])],
      ttlMs: 365 * 24 * 3600 * 1000,
    });
  const grpcPort = await grpc.listen(opts.grpcHost, opts.grpcPort, await issueServing());
  // after a root rotation the serving certificate must chain to the new root before the old one retires
  let servingRoot = ca.rootCertPem();
  ca.onChange(() => {
    if (ca.rootCertPem() === servingRoot) return;
    servingRoot = ca.rootCertPem();
    issueServing().then(
      (c) => grpc.reloadCertificate(c),
      (e: unknown) => log.error('cannot re-issue the serving certificate after root rotation', { err: e }),
    );
  });

  // The operator web page (controller/web) owns the HTTP server; the admin write API answers first.
  const web = createWebServer({
    registry,
    logger: log,
    configSummary: () => {
      return { ...publisher.summary(), objects: store.size() };
    },
    statusProviders: {
      ...(localSource ? { localFiles: () => Object.fromEntries(localSource.problems) } : {}),
      // HTTPRoute/GRPCRoute conditions per parent Service (docs/routing.md has the shape)
      routes: () => { const cfg = publisher.current(); return routeStatuses(store, { trustDomain: opts.trustDomain, rootNamespace, workloads: cfg.workloads, services: cfg.services }); },
      ...(opts.statusProviders ?? {}),
    },
  });
  const scraper = opts.scrapeAgents
    ? new AgentScraper({ targets: () => publisher.current().nodes.map((n) => ({ node: n.name, url: `http://${n.ip.includes(':') ? `[${n.ip}]` : n.ip}:${opts.scrapeAgents!.port}/metrics` })), intervalMs: opts.scrapeAgents.intervalMs ?? 5000, logger: log.child('scraper') })
    : undefined;
  scraper?.start();
  const handlers: HttpHandler[] = [
    createObserveHandler({ config: () => publisher.current(), registry, ...(scraper ? { scraper } : {}), ...(opts.prometheusUrl ? { prometheus: new PrometheusClient(opts.prometheusUrl) } : {}) }),
    createMetricsHandler({ config: () => publisher.current(), registry, objects: () => store.size(), metrics }),
    createTapHandler({ broker: taps, nodes: () => publisher.current().nodes.map((n) => n.name), ...(opts.operatorToken ? { operatorToken: opts.operatorToken } : {}) }),
    createAdminHandler({ store, ca, logger: log.child('admin'), afterWrite: () => publisher.flush(), ...(opts.operatorToken ? { operatorToken: opts.operatorToken } : {}) }),
    ...(opts.httpHandlers ?? []),
  ];
  const webRequest = web.server.listeners('request').slice() as ((req: IncomingMessage, res: ServerResponse) => void)[];
  web.server.removeAllListeners('request');
  web.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      for (const h of handlers) if (await h(req, res)) return;
      for (const l of webRequest) l(req, res);
    })().catch((e: unknown) => {
      log.error('http handler failed', { err: e });
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  const webPort = (await web.listen(opts.webPort, opts.webHost)).port;
  log.info('controller up', { grpcPort, webPort, trustDomain: opts.trustDomain, objects: store.size() });

  return {
    ca,
    store,
    publisher,
    registry,
    grpc,
    localSource,
    grpcPort,
    webPort,
    trustBundleFile,
    controllerIdentity,
    async close() {
      stopRootWatch();
      for (const s of sources) await s.stop().catch(() => undefined);
      scraper?.stop();
      bundlePublisher?.close();
      publisher.close();
      await grpc.close();
      await web.close();
    },
  };
}

