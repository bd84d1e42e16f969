// The agent's own health under weft_*: proxy events (refusals, handshake failures), capture counters
// (supplied by the redirect manager as a callback, so metrics never reach into the kernel themselves),
// config version, certificate expiry, controller connection, and node CPU/memory.
import { Counter, Gauge, type Registry } from 'prom-client';

// systeminformation is several MB of code the agent only needs when someone scrapes the node gauges: load
// it on the first scrape, not at startup (an idle agent's RSS is a goal, issue 5).
let systemInfo: Promise<typeof import('systeminformation')> | undefined;
async function si(): Promise<typeof import('systeminformation')> {
  systemInfo ??= import('systeminformation').then((m) => (m as unknown as { default?: typeof import('systeminformation') }).default ?? m);
  return systemInfo;
}

/** What the capture side reports; read at scrape time. */
export interface CaptureStats {
  /** counter name (e.g. redirected, passed, guard_dropped) → value summed over CPUs */
  counters: Record<string, number>;
  /** map name → live entries */
  mapEntries: Record<string, number>;
  enrolledPods: number;
}

export interface AgentHealthSources {
  captureStats?: () => CaptureStats | Promise<CaptureStats>;
  configVersion?: () => number;
  controllerConnected?: () => boolean;
  /** spiffe id → notAfter of the certificate the agent holds */
  certificateExpiries?: () => Map<string, Date>;
}

export class AgentMetrics {
  readonly refused: Counter<'direction' | 'reason'>;
  readonly tunnelHandshakeFailures: Counter<'side' | 'reason'>;
  readonly activeConnections: Gauge<'direction'>;
  readonly sniffed: Counter<'protocol'>;
  readonly uncaptured: Counter<'source_workload' | 'source_workload_namespace' | 'destination_workload' | 'destination_workload_namespace'>;
  readonly captureRepairs: Counter<'what'>;

  constructor(registry: Registry, sources: AgentHealthSources = {}) {
    const registers = [registry];
    this.refused = new Counter({
      name: 'weft_proxy_connections_refused_total',
      help: 'Connections the proxy refused, by direction and reason (unknown_connection, no_endpoint, denied, ...)',
      labelNames: ['direction', 'reason'],
      registers,
    });
    this.tunnelHandshakeFailures = new Counter({
      name: 'weft_tunnel_handshake_failures_total',
      help: 'mTLS tunnel handshakes refused, by side (client|server) and reason (untrusted_ca, expired, identity_mismatch, ...)',
      labelNames: ['side', 'reason'],
      registers,
    });
    this.activeConnections = new Gauge({ name: 'weft_proxy_active_connections', help: 'Open downstream connections', labelNames: ['direction'], registers });
    this.sniffed = new Counter({ name: 'weft_proxy_protocol_detected_total', help: 'Outbound connections by detected protocol', labelNames: ['protocol'], registers });
    this.uncaptured = new Counter({
      name: 'weft_uncaptured_connections_total',
      help: 'Connections from an enrolled pod to a mesh destination that reached it without passing the source node proxy (capture failed for them); counted by the destination node',
      labelNames: ['source_workload', 'source_workload_namespace', 'destination_workload', 'destination_workload_namespace'],
      registers,
    });
    this.captureRepairs = new Counter({
      name: 'weft_capture_repairs_total',
      help: 'Capture drift the agent found and repaired: enrolled pods or destinations missing from the kernel maps, programs detached',
      labelNames: ['what'],
      registers,
    });

    new Gauge({
      name: 'weft_config_version',
      help: 'Version of the MeshConfig in force',
      registers,
      collect() {
        this.set(sources.configVersion?.() ?? 0);
      },
    });
    new Gauge({
      name: 'weft_controller_connected',
      help: '1 when the config stream to the controller is up',
      registers,
      collect() {
        this.set(sources.controllerConnected?.() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'weft_certificate_expiry_seconds',
      help: 'Seconds until each held workload certificate expires',
      labelNames: ['spiffe_id'],
      registers,
      collect() {
        this.reset();
        const now = Date.now();
        for (const [id, notAfter] of sources.certificateExpiries?.() ?? []) this.set({ spiffe_id: id }, (notAfter.getTime() - now) / 1000);
      },
    });
    const capture = sources.captureStats;
    new Gauge({
      name: 'weft_redirect_events',
      help: 'Capture counters from the eBPF programs (per-CPU maps summed), by event',
      labelNames: ['event'],
      registers,
      async collect() {
        if (!capture) return;
        const s = await capture();
        for (const [k, v] of Object.entries(s.counters)) this.set({ event: k }, v);
      },
    });
    new Gauge({
      name: 'weft_bpf_map_entries',
      help: 'Live entries per eBPF map',
      labelNames: ['map'],
      registers,
      async collect() {
        if (!capture) return;
        const s = await capture();
        for (const [k, v] of Object.entries(s.mapEntries)) this.set({ map: k }, v);
      },
    });
    new Gauge({
      name: 'weft_enrolled_pods',
      help: 'Pods whose cgroups are enrolled for capture',
      registers,
      async collect() {
        if (!capture) return;
        this.set((await capture()).enrolledPods);
      },
    });
    new Gauge({
      name: 'weft_node_cpu_load_percent',
      help: 'Node CPU load (systeminformation currentLoad)',
      registers,
      async collect() {
        this.set((await (await si()).currentLoad()).currentLoad);
      },
    });
    new Gauge({
      name: 'weft_node_memory_bytes',
      help: 'Node memory, by state (used, available, total)',
      labelNames: ['state'],
      registers,
      async collect() {
        const m = await (await si()).mem();
        this.set({ state: 'used' }, m.active);
        this.set({ state: 'available' }, m.available);
        this.set({ state: 'total' }, m.total);
      },
    });
  }
}
