// Health and readiness (:15021). Live: the process answers and nothing says it is wedged (the event loop
// has not stalled for seconds lately, uncaught errors are within budget). Ready: every check passes (proxy
// listening, a config in force, capture attached, certificates held); a failing check is named in the
// answer, so a probe failure in `kubectl describe` says what is missing.
import type { Logger } from '../../common/log.js';
import { json, serveHttp, type ListenFn, type Listening } from '../admin/listen.js';

/** Returns undefined when fine, or what is wrong. */
export type HealthCheck = () => string | undefined;
/** kept for callers of the first version */
export type ReadinessCheck = HealthCheck;

/** A named set of checks; the answer names every failing one. */
export class HealthChecks {
  private readonly checks = new Map<string, HealthCheck>();

  add(name: string, check: HealthCheck): void {
    this.checks.set(name, check);
  }

  protected run(failing: Record<string, string>): Record<string, string> {
    for (const [name, check] of this.checks) {
      let why: string | undefined;
      try {
        why = check();
      } catch (e) {
        why = (e as Error)?.message ?? String(e);
      }
      if (why) failing[name] = why;
    }
    return failing;
  }

  status(): { ok: boolean; failing: Record<string, string> } {
    const failing = this.run({});
    return { ok: Object.keys(failing).length === 0, failing };
  }
}

export class Liveness extends HealthChecks {
  override status(): { live: boolean; ok: boolean; failing: Record<string, string> } {
    const s = super.status();
    return { live: s.ok, ...s };
  }
}

export class Readiness extends HealthChecks {
  private draining = false;

  /** After SIGTERM: report not ready so no new traffic is sent here while connections drain. */
  setDraining(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  override status(): { ready: boolean; ok: boolean; failing: Record<string, string> } {
    const failing: Record<string, string> = {};
    if (this.draining) failing['drain'] = 'the agent is shutting down';
    this.run(failing);
    const ok = Object.keys(failing).length === 0;
    return { ready: ok, ok, failing };
  }
}

export function serveHealth(readiness: Readiness, host: string, port: number, log: Logger, liveness: Liveness = new Liveness(), listen?: ListenFn): Promise<Listening> {
  return serveHttp('health', host, port, (_req, url) => {
    if (url.pathname === '/healthz/live') {
      const s = liveness.status();
      return json({ live: s.live, failing: s.failing }, s.live ? 200 : 503);
    }
    if (url.pathname === '/healthz/ready') {
      const s = readiness.status();
      return json({ ready: s.ready, failing: s.failing }, s.ready ? 200 : 503);
    }
    return undefined;
  }, log, listen);
}
