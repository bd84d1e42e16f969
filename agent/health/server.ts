// Health and readiness (:15021). Live: the process answers. Ready: every check passes (proxy listening,
// a config in force, capture attached); a failing check is named in the answer, so a probe failure in
// `kubectl describe` says what is missing.
import type { Logger } from '../../common/log.js';
import { json, serveHttp, type Listening } from '../admin/listen.js';

/** Returns undefined when fine, or what is wrong. */
export type ReadinessCheck = () => string | undefined;

export class Readiness {
  private readonly checks = new Map<string, ReadinessCheck>();
  private draining = false;

  add(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  /** After SIGTERM: report not ready so no new traffic is sent here while connections drain. */
  setDraining(): void {
    this.draining = true;
  }

  status(): { ready: boolean; failing: Record<string, string> } {
    const failing: Record<string, string> = {};
    if (this.draining) failing['drain'] = 'the agent is shutting down';
    for (const [name, check] of this.checks) {
      let why: string | undefined;
      try {
        why = check();
      } catch (e) {
        why = (e as Error)?.message ?? String(e);
      }
      if (why) failing[name] = why;
    }
    return { ready: Object.keys(failing).length === 0, failing };
  }
}

export function serveHealth(readiness: Readiness, host: string, port: number, log: Logger): Promise<Listening> {
  return serveHttp('health', host, port, (_req, url) => {
    if (url.pathname === '/healthz/live') return json({ live: true });
    if (url.pathname === '/healthz/ready') {
      const s = readiness.status();
      return json(s, s.ready ? 200 : 503);
    }
    return undefined;
  }, log);
}
