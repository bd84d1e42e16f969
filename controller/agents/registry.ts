// The controller's record of agents: who is connected, and what each last reported. The gRPC service
// writes it; the operator web page and JSON API (15014) read it.

export interface AgentReport {
  node: string;
  /** config version the agent is serving, and the state of the newest version it was sent */
  configVersion: number;
  lastSentVersion: number;
  ack: 'ACK' | 'NACK' | 'PENDING';
  nackReason?: string;
  healthy: boolean;
  /** soonest expiry over the agent's workload certificates, ISO 8601 */
  certExpiry?: string;
  counters: {
    requests: number;
    requestErrors: number;
    connectionsOpened: number;
    connectionsActive: number;
    redirects: number;
    cpuPercent: number;
    memoryRssBytes: number;
  };
  reportedAt: string;
}

export interface AgentRecord {
  node: string;
  connected: boolean;
  connectedAt?: string;
  disconnectedAt?: string;
  peer?: string;
  lastReport?: AgentReport;
}

export class AgentRegistry {
  private readonly agents = new Map<string, AgentRecord>();
  private readonly listeners = new Set<(rec: AgentRecord) => void>();

  connected(node: string, peer: string): void {
    const rec: AgentRecord = { ...this.agents.get(node), node, connected: true, connectedAt: new Date().toISOString(), peer };
    this.set(rec);
  }

  disconnected(node: string): void {
    const prev = this.agents.get(node);
    if (!prev) return;
    this.set({ ...prev, connected: false, disconnectedAt: new Date().toISOString() });
  }

  report(r: AgentReport): void {
    const prev = this.agents.get(r.node) ?? { node: r.node, connected: true };
    this.set({ ...prev, lastReport: r });
  }

  list(): AgentRecord[] {
    return [...this.agents.values()].sort((a, b) => a.node.localeCompare(b.node));
  }

  get(node: string): AgentRecord | undefined {
    return this.agents.get(node);
  }

  /** live updates (for the web page's server-sent events); returns an unsubscribe function */
  subscribe(fn: (rec: AgentRecord) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private set(rec: AgentRecord): void {
    this.agents.set(rec.node, rec);
    for (const fn of this.listeners) fn(rec);
  }
}
