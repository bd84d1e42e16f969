// The readiness checks that need more than a one-liner, as pure functions of what they read, so each is
// unit-tested without an agent: capture in force in the kernel, certificates held for every identity the
// node's pods need.
import type { WorkloadCertificate } from '../../common/identity.js';
import type { HealthCheck } from './server.js';

export interface CaptureView {
  /** the proxy port in the kernel's capture config (0/undefined: capture not configured) */
  kernelProxyPort(): number | undefined;
  /** the last capture reconcile error, if the last attempt failed */
  lastError(): string | undefined;
}

/** Capture is ready when the kernel steers to our outbound port and the last reconcile succeeded. */
export function captureCheck(view: CaptureView, outboundPort: number): HealthCheck {
  return () => {
    const port = view.kernelProxyPort();
    if (!port) return 'capture is not configured in the kernel (no proxy address in weft_config)';
    if (port !== outboundPort) return `capture steers to port ${port}, the proxy listens on ${outboundPort}`;
    const err = view.lastError();
    return err ? `the last capture reconcile failed: ${err}` : undefined;
  };
}

export interface CertificatesView {
  /** identities the node's meshed pods need now */
  wanted(): Iterable<string>;
  held(): WorkloadCertificate[];
}

/**
 * Certificates are ready when every wanted identity has an unexpired certificate. A newly wanted identity
 * gets `graceMs` to be issued (a pod scheduled here must not flap the agent's readiness for one CSR round
 * trip); an expired certificate fails at once.
 */
export function certificatesCheck(view: CertificatesView, graceMs = 10_000, now: () => number = Date.now): HealthCheck {
  const firstMissing = new Map<string, number>();
  return () => {
    const t = now();
    const held = new Map(view.held().map((c) => [c.spiffeId, c]));
    const problems: string[] = [];
    const wanted = new Set(view.wanted());
    for (const id of firstMissing.keys()) if (!wanted.has(id)) firstMissing.delete(id);
    for (const id of wanted) {
      const c = held.get(id);
      if (c && c.notAfter.getTime() > t) {
        firstMissing.delete(id);
        continue;
      }
      if (c) {
        problems.push(`${id} expired at ${c.notAfter.toISOString()}`);
        continue;
      }
      const since = firstMissing.get(id) ?? t;
      firstMissing.set(id, since);
      if (t - since >= graceMs) problems.push(`${id} not issued after ${Math.round((t - since) / 1000)} s`);
    }
    return problems.length ? problems.slice(0, 5).join('; ') + (problems.length > 5 ? ` (+${problems.length - 5} more)` : '') : undefined;
  };
}
