// A registry filled like a small live mesh, for the web tests: node-a healthy, node-b NACKing with a
// reason that contains markup and a certificate expiring soon, node-c disconnected.
import { AgentRegistry, type AgentReport } from '../../controller/agents/registry.js';

export const NACK_REASON = 'HTTPRoute shop/cart spec.rules[0].backendRefs: <img src=x onerror="document.title=\'pwned\'"> weights must sum to more than 0';

export function report(node: string, now: number, o: Partial<AgentReport> = {}): AgentReport {
  return {
    node,
    configVersion: 42,
    lastSentVersion: 42,
    ack: 'ACK',
    healthy: true,
    certExpiry: new Date(now + 20 * 3600_000).toISOString(),
    counters: { requests: 1_234_567, requestErrors: 89, connectionsOpened: 4567, connectionsActive: 12, redirects: 4600, cpuPercent: 3.25, memoryRssBytes: 123_456_789 },
    reportedAt: new Date(now - 2000).toISOString(),
    ...o,
  };
}

export function filledRegistry(now = Date.now()): AgentRegistry {
  const reg = new AgentRegistry();
  reg.connected('node-a', '10.99.0.11:50122');
  reg.report(report('node-a', now));
  reg.connected('node-b', '10.99.0.12:40222');
  reg.report(
    report('node-b', now, {
      configVersion: 41,
      lastSentVersion: 42,
      ack: 'NACK',
      nackReason: NACK_REASON,
      certExpiry: new Date(now + 2 * 3600_000).toISOString(),
      counters: { requests: 98_765, requestErrors: 4321, connectionsOpened: 800, connectionsActive: 3, redirects: 810, cpuPercent: 12.5, memoryRssBytes: 98_000_000 },
    }),
  );
  reg.connected('node-c', '10.99.0.13:39002');
  reg.report(report('node-c', now, { counters: { requests: 5555, requestErrors: 0, connectionsOpened: 40, connectionsActive: 0, redirects: 41, cpuPercent: 0.5, memoryRssBytes: 80_000_000 } }));
  reg.disconnected('node-c');
  return reg;
}
