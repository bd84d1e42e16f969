// When a supervisor started the agent with an IPC channel (the sandbox's DaemonSet stand-in), tell it the
// moment the agent is ready, so an in-place upgrade stops the old agent only once the new one serves.
// Under Kubernetes there is no channel; the kubelet's readiness probe plays this part.
import type { Readiness } from '../health/server.js';

export const READY_MESSAGE = { weft: 'agent-ready' } as const;

/** Polls readiness until it first passes, then sends READY_MESSAGE once. Returns a canceller. */
export function announceReady(readiness: Readiness, send: ((m: unknown) => unknown) | undefined = process.send?.bind(process), pollMs = 100): () => void {
  if (!send) return () => {};
  const timer = setInterval(() => {
    if (!readiness.status().ready) return;
    clearInterval(timer);
    try {
      send({ ...READY_MESSAGE, pid: process.pid });
    } catch {
      // the supervisor is gone: nothing to tell
    }
  }, pollMs);
  timer.unref();
  return () => clearInterval(timer);
}
