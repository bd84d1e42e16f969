// Prometheus scrape endpoint (:15020): /metrics, and /stats/prometheus as Istio serves it.
import type { Registry } from 'prom-client';
import type { Logger } from '../../common/log.js';
import { serveHttp, type ListenFn, type Listening } from '../admin/listen.js';

export function serveMetrics(registry: Registry, host: string, port: number, log: Logger, listen?: ListenFn): Promise<Listening> {
  return serveHttp('metrics', host, port, async (_req, url) => {
    if (url.pathname !== '/metrics' && url.pathname !== '/stats/prometheus') return undefined;
    return { status: 200, type: registry.contentType, body: await registry.metrics() };
  }, log, listen);
}
