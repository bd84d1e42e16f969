// Periodic agent reports to the controller: health, config version and ACK state, certificate expiry and
// counters (supplied by a callback: the agent's metrics know them, this module does not).
import type { Logger } from '../../common/log.js';
import { silentLogger } from '../../common/log.js';
import type { AgentReport } from '../../proto/generated/weft/v1/AgentReport.js';
import type { ConfigClientStatus } from './client.js';

export interface ReportCounters {
  requests: number;
  requestErrors: number;
  connectionsOpened: number;
  connectionsActive: number;
  redirects: number;
  cpuPercent: number;
  memoryRssBytes: number;
}

export interface ReporterOptions {
  connection: { report(r: AgentReport): Promise<{ intervalSeconds: number }> };
  status: () => ConfigClientStatus;
  counters: () => ReportCounters | Promise<ReportCounters>;
  certExpiry: () => Date | undefined;
  healthy?: () => boolean;
  /** first interval; the controller's answer overrides it. Default 5 s */
  intervalMs?: number;
  logger?: Logger;
}

export class AgentReporter {
  private timer: NodeJS.Timeout | undefined;
  private intervalMs: number;
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly opts: ReporterOptions) {
    this.intervalMs = opts.intervalMs ?? 5000;
    this.log = opts.logger ?? silentLogger;
  }

  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** sends one report now */
  async reportOnce(): Promise<void> {
    const st = this.opts.status();
    const c = await this.opts.counters();
    const expiry = this.opts.certExpiry();
    const res = await this.opts.connection.report({
      configVersion: st.configVersion,
      lastReceivedVersion: st.lastReceivedVersion,
      ack: st.ack,
      nackReason: st.nackReason ?? '',
      healthy: this.opts.healthy ? this.opts.healthy() : true,
      certExpiry: expiry ? expiry.toISOString() : '',
      ...c,
    });
    if (res.intervalSeconds > 0) this.intervalMs = res.intervalSeconds * 1000;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.reportOnce().then(
        () => this.schedule(this.intervalMs),
        (e: unknown) => {
          this.log.debug('report failed', { err: e });
          this.schedule(this.intervalMs);
        },
      );
    }, ms);
    this.timer.unref?.();
  }
}
