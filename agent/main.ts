// The agent's composition root: the only place that builds the pieces and wires them together.
// preflight + capture (RedirectManager) → controller connection → identity (CSR-issued certificates) →
// config client (MeshConfig → state, capture, wanted identities) → node proxy → metrics, health, admin,
// reports. SIGTERM drains: not ready, stop accepting, let connections finish, then exit. Capture stays
// pinned in the kernel, so a restarted agent picks up where this one left off.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isIP } from 'node:net';
import { Registry } from 'prom-client';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { ConfigClient } from './config/client.js';
import { ControllerConnection, DEFAULT_CONTROLLER_IDENTITY, tokenFromFile } from './config/controller-connection.js';
import { AgentReporter } from './config/reporter.js';
import { openCaptureCgroups } from './capture-cgroups.js';
import type { AgentOptions } from './flags.js';
import { captureCheck, certificatesCheck } from './health/checks.js';
import { Liveness, Readiness, serveHealth } from './health/server.js';
import { CrashBudget } from './lifecycle/crash-budget.js';
import { registerLifecycleMetrics } from './lifecycle/metrics.js';
import { LoopWatchdog } from './lifecycle/watchdog.js';
import { drainForHandover } from './lifecycle/drain.js';
import { enableRequestMigration, listenReusePort } from './lifecycle/reuseport.js';
import { announceReady } from './lifecycle/supervised.js';
import { IdentityManager } from './identity/manager.js';
import { serveAdmin } from './admin/server.js';
import { PolicyEnforcer } from './authz/enforcer.js';
import { authzStage } from './authz/stage.js';
import { nodeAddresses } from './authz/guard-sources.js';
import { AuthzMetrics } from './authz/metrics.js';
import { registerTrafficMetrics } from './traffic/metrics.js';
import { trafficStatus } from './traffic/status.js';
import { RoutingMetrics } from './routing/metrics.js';
import { routingObserver, routingRouter } from './routing/router.js';
import { STAGE_FACTORIES } from './pipeline/wiring.js';
import type { Listening } from './admin/listen.js';
import { AgentMetrics } from './metrics/agent-health.js';
import { ConfigApplyMetrics } from './metrics/config-apply.js';
import { IstioMetrics } from './metrics/istio.js';
import { serveMetrics } from './metrics/server.js';
import { NodeProxy } from './proxy/proxy.js';
import { transparentPodConnector, type PodConnector } from './proxy/transparent.js';
import { accessLogObserver } from './observe/access-log.js';
import { TapHub, tapObserver } from './observe/tap.js';
import { TapStreamClient } from './observe/tap-stream.js';
import { setupTransparentRouting } from './proxy/transparent-routing.js';
import { connectTcp } from './proxy/upstream.js';
import { RedirectManager } from './redirect/manager.js';
import { InboundCapture } from './redirect/inbound-capture.js';
import { uninstallCapture } from './redirect/uninstall.js';
import { CaptureSync } from './state/capture-sync.js';
import { MeshState } from './state/mesh-state.js';

/** How often the kernel's capture state is checked against the config in force (and repaired). */
const CAPTURE_AUDIT_MS = 5_000;
/** How long one heartbeat keeps the kernel steering to the proxy: the fail mode takes over within this. */
const FAIL_MODE_GRACE_NS = 1_000_000_000n;

export interface RunningAgent {
  /** graceful: drain connections, then release everything */
  stop(): Promise<void>;
}

export async function runAgent(opts: AgentOptions, log: Logger): Promise<RunningAgent> {
  if (opts.uninstall) {
    const report = uninstallCapture(opts.bpffs, log);
    log.info('capture uninstalled', { pinDir: opts.bpffs, report });
    return { stop: async () => {} };
  }
  const cleanups: Array<() => void | Promise<void>> = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (e) {
        log.warn('cleanup step failed', { error: e });
      }
    }
  };
  try {
    const controllerCa = readFileSync(opts.controllerCaFile, 'utf8');
    const registry = new Registry();
    const readiness = new Readiness();
    const liveness = new Liveness();
    // Uncaught errors are survived but counted; a burst of them, or an event loop stalled for seconds,
    // makes the agent not live (see lifecycle/).
    const crashes = new CrashBudget();
    cleanups.push(crashes.install(log));
    const watchdog = new LoopWatchdog();
    watchdog.start();
    cleanups.push(() => watchdog.stop());
    liveness.add('event_loop', () => watchdog.liveProblem());
    liveness.add('uncaught_errors', () => crashes.liveProblem());
    registerLifecycleMetrics(registry, { watchdog, crashes });

    // Every listener is SO_REUSEPORT, so a successor agent (restart, upgrade) binds beside this one and
    // takes over before this one stops accepting; queued connections of a closed listener migrate to it.
    const migrate = enableRequestMigration();
    log.info('listener handover', { tcpMigrateReq: migrate });
    const listenReuse = (server: import('node:net').Server, what: string, a: { host: string; port: number }) =>
      listenReusePort(server, { host: a.host, port: a.port, what, retryInUseMs: 30_000 });
    const state = new MeshState(opts.node);

    // Capture: attach (or re-use the pinned programs) before anything is redirected to us.
    // Kubernetes: pod changes on this node re-apply the last config at once (sync is created just below)
    let sync: CaptureSync | undefined;
    const cgroups = await openCaptureCgroups({
      layout: opts.cgroupLayout,
      cgroupRoot: opts.cgroupRoot,
      node: opts.node,
      env: process.env,
      logger: log,
      resync: () => sync?.resync(),
    });
    cleanups.push(() => cgroups.close());
    const { resolver, attachAt } = cgroups;
    const v6 = isIP(opts.outboundIp) === 6;
    const capture = RedirectManager.open({
      pinDir: opts.bpffs,
      cgroupRoot: attachAt,
      proxy: { ...(v6 ? { ipv6: opts.outboundIp } : { ipv4: opts.outboundIp }), port: opts.listen.outbound },
      // STRICT pods accept plaintext only from this node (where the proxy delivers from): all its addresses
      guardSources: nodeAddresses(),
      logger: log,
    });
    cleanups.push(() => capture.close());
    const captureSync = new CaptureSync(capture, resolver, opts.node, log.child('capture-sync'));
    sync = captureSync;
    cleanups.push(() => captureSync.stop());
    state.setCgroupResolver((id) => captureSync.uidOf(id));

    const conn = new ControllerConnection({
      address: opts.controller,
      node: opts.node,
      token: tokenFromFile(opts.tokenFile),
      trustBundlePem: controllerCa,
      controllerIdentity: DEFAULT_CONTROLLER_IDENTITY(opts.trustDomain),
    });
    cleanups.push(() => conn.close());

    const identity = new IdentityManager({
      signer: { signCsr: (csr) => conn.signCsr(csr) },
      stateDir: join(opts.stateDir, 'identity'),
      initialTrustBundlePem: controllerCa,
      logger: log.child('identity'),
    });
    await identity.start();
    cleanups.push(() => identity.stop());

    const agentMetrics = new AgentMetrics(registry, {
      configVersion: () => state.version,
      controllerConnected: () => config.status().connected,
      certificateExpiries: () => new Map(identity.certificates().map((c) => [c.spiffeId, c.notAfter])),
      captureStats: () => {
        const c = capture.readCounters();
        const m = capture.mapEntries();
        return {
          counters: Object.fromEntries(Object.entries(c).map(([k, v]) => [k, Number(v)])),
          mapEntries: { ...m },
          enrolledPods: m.pods,
        };
      },
    });
    // Authorization: the compiled AuthorizationPolicies of the config in force, re-evaluated on every version
    const authz = new PolicyEnforcer({ state, log: log.child('authz'), metrics: new AuthzMetrics(registry) });
    cleanups.push(() => authz.close());
    const istio = new IstioMetrics(registry);
    // Transparent sources: pods see their callers' addresses; the STRICT guard knows the proxy's SYNs by
    // the 4-tuples it registers in the capture maps
    if (opts.transparentSource) setupTransparentRouting(log.child('transparent'));
    const plainPodConnect: PodConnector = (c) => connectTcp(c.ip, c.port, c.timeoutMs);
    const routing = new RoutingMetrics(registry);
    // tracing: the SDK is loaded only when it is on
    const tracing = opts.tracing ? (await import('./observe/otlp.js')).otlpTracing(opts.tracing, state, registry, log.child('tracing')) : undefined;
    if (tracing) {
      log.info('tracing on', { collector: opts.tracing!.collector, samplingPercent: opts.tracing!.sampling * 100 });
      cleanups.push(() => tracing.shutdown());
    }
    // taps (weft tap / top) opened by the controller over the agent's own stream; one boolean per request when none
    const tapHub = new TapHub();
    const proxy = new NodeProxy({
      ...(tracing ? { tracing } : {}),
      stages: { authorizer: authzStage(authz), router: routingRouter({ metrics: routing }), observers: [...STAGE_FACTORIES.observers, routingObserver(routing, () => state.trustDomain), accessLogObserver(log.child('access')), tapObserver(tapHub)] },
      ...(opts.transparentSource ? { podConnect: transparentPodConnector(capture, plainPodConnect) } : {}),
      state,
      lookup: capture,
      certs: identity,
      log: log.child('proxy'),
      metrics: istio,
      agentMetrics,
      outbound: { host: opts.outboundIp, port: opts.listen.outbound },
      inbound: { host: opts.nodeIp, port: opts.listen.inbound },
      listen: listenReuse,
      // a meshed pod of this node reached a pod without its proxy: audit and repair capture now
      onUncaptured: (caller) => {
        if (caller.node === opts.node) captureSync.auditSoon();
      },
      limits: { drainTimeoutMs: opts.drainTimeoutMs },
    });
    cleanups.push(() => proxy.close());
    // Inbound capture: callers outside the mesh are handed to the proxy in each enrolled pod's namespace
    const inbound = InboundCapture.open({ pinDir: opts.bpffs, logger: log.child('inbound-capture'), serve: (fd) => proxy.listenPlaintext(fd) });
    cleanups.push(() => inbound.close());
    captureSync.setInbound(inbound);
    captureSync.onRepair = (what, n) => agentMetrics.captureRepairs.inc({ what }, n);
    captureSync.startAuditing(CAPTURE_AUDIT_MS);
    // Traffic policy state (balancer load, ejections, circuits, buckets, fallbacks): admin /traffic and weft_traffic_*
    const traffic = () => trafficStatus(proxy.pipeline.runtime, state.config);
    registerTrafficMetrics(registry, traffic);
    let proxyListening = false;
    cleanups.push(() => {
      proxyListening = false;
    });

    const applyMetrics = new ConfigApplyMetrics(registry);
    const config = new ConfigClient({
      connection: conn,
      stateDir: join(opts.stateDir, 'config'),
      logger: log.child('config'),
      timed: (t) => applyMetrics.update(t),
      apply: (cfg, bundle) => {
        // Capture first: if the kernel refuses this config, it is NACKed and nothing else changed.
        const t0 = performance.now();
        captureSync.apply(cfg);
        const t1 = performance.now();
        applyMetrics.step('capture', t1 - t0);
        if (bundle) identity.setTrustBundle(bundle);
        // indexes, then (listeners) pipeline stages and the re-evaluation of open connections
        state.update(cfg);
        applyMetrics.step('rebuild', performance.now() - t1);
        identity.setWanted(new Set(state.localWorkloads().filter((w) => w.meshed).map((w) => state.identityOf(w))));
      },
    });
    await config.start();
    cleanups.push(() => config.stop());
    const taps = new TapStreamClient({ connection: conn, hub: tapHub, log: log.child('tap') });
    taps.start();
    cleanups.push(() => taps.stop());

    readiness.add('config', () => (state.version > 0 ? undefined : 'no mesh config yet (controller unreachable and nothing saved on disk)'));
    readiness.add('trust', () => (identity.trustBundlePem() ? undefined : 'no trust bundle'));
    readiness.add('proxy', () => (proxyListening ? undefined : 'the proxy is not listening (it binds once a mesh config is in force)'));
    readiness.add('capture', captureCheck({ kernelProxyPort: () => capture.captureConfig()?.proxyPort, lastError: () => captureSync.lastError }, opts.listen.outbound));
    readiness.add(
      'certificates',
      certificatesCheck({
        wanted: () => state.localWorkloads().filter((w) => w.meshed).map((w) => state.identityOf(w)),
        held: () => identity.certificates(),
      }),
    );

    const listeners: Listening[] = [
      await serveMetrics(registry, '0.0.0.0', opts.listen.metrics, log, listenReuse),
      await serveHealth(readiness, '0.0.0.0', opts.listen.health, log, liveness, listenReuse),
      await serveAdmin(
        {
          state,
          connections: proxy.connections,
          certs: identity,
          certificates: () => identity.certificates(),
          configStatus: () => config.status(),
          authzStatus: () => authz.status(),
          trafficStatus: traffic,
          captureStatus: () => ({ pinDir: opts.bpffs, cgroupRoot: attachAt, enrolled: capture.enrolled(), unresolvedPods: captureSync.unresolved, counters: capture.readCounters(), maps: capture.mapEntries() }),
        },
        '127.0.0.1',
        opts.listen.admin,
        log,
        listenReuse,
      ),
    ];
    cleanups.push(async () => {
      for (const l of listeners) await l.close();
    });

    // The proxy binds its ports only once a config is in force. With SO_REUSEPORT the kernel spreads new
    // connections over every listener of the port the moment one is bound, so a successor that listened
    // before it knew the mesh would answer a share of the node's connections with 503s during a restart.
    // A successor starts from the last good config on disk, so this wait is short.
    await config.waitForVersion(1);
    await proxy.start();
    proxyListening = true;
    // The fail-mode heartbeat: every watchdog tick tells the kernel the proxy serves for another second.
    // A proxy killed, stopped or stalled stops ticking, and its pods' captured connections follow their
    // namespace's fail mode within a second (bpf/lib/maps.h, weft_alive).
    let leaving = false;
    const beat = () => {
      if (proxyListening && !leaving) capture.servingUntil(process.hrtime.bigint() + FAIL_MODE_GRACE_NS);
    };
    beat();
    cleanups.push(watchdog.onTick(beat));

    let lastCpu = process.cpuUsage();
    let lastAt = Date.now();
    const reporter = new AgentReporter({
      connection: conn,
      status: () => config.status(),
      certExpiry: () => identity.soonestExpiry(),
      healthy: () => readiness.status().ready,
      logger: log.child('reporter'),
      counters: async () => {
        const cpu = process.cpuUsage(lastCpu);
        const now = Date.now();
        const cpuPercent = ((cpu.user + cpu.system) / 1000 / Math.max(1, now - lastAt)) * 100;
        lastCpu = process.cpuUsage();
        lastAt = now;
        const totals = istio.totals();
        return {
          requests: totals.requests,
          requestErrors: totals.requestErrors,
          connectionsOpened: totals.connectionsOpened,
          connectionsActive: proxy.connections.size,
          redirects: Number(capture.readCounters().redirected),
          cpuPercent,
          memoryRssBytes: process.memoryUsage.rss(),
        };
      },
    });
    reporter.start();
    cleanups.push(() => reporter.stop());
    log.info('agent running', { node: opts.node, nodeIp: opts.nodeIp, outbound: `${opts.outboundIp}:${opts.listen.outbound}`, controller: opts.controller });

    cleanups.push(announceReady(readiness));

    return {
      stop: async () => {
        readiness.setDraining();
        log.info('draining', { open: proxy.connections.size });
        const outcome = await drainForHandover(proxy, {
          ports: [opts.listen.outbound, opts.listen.inbound],
          deadlineMs: proxy.limits.drainTimeoutMs,
          log,
          // the successor answers probes, scrapes and the admin API from now on
          onHandover: async () => {
            for (const l of listeners) await l.close();
          },
          // no successor: from now on the kernel applies the fail mode to new connections
          onLastOut: () => {
            leaving = true;
            capture.notServing();
          },
        });
        log.info('drained', { outcome });
        await cleanup();
      },
    };
  } catch (e) {
    log.error('agent failed to start', { error: errorMessage(e) });
    await cleanup();
    throw e;
  }
}
