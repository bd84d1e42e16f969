// A finished request as the proxy's adapters hand it to the pipeline's observers, without a proxy: a GET from
// pod shop/load-1 (workload load) on the source side, answered before any endpoint was picked (no metric
// labels, so the tap reports this side's view), carrying the headers given.
import { RequestContext, newConnectionContext, sourceFromWorkload } from '../../agent/pipeline/context.js';
import type { MeshState } from '../../agent/state/mesh-state.js';

export function finishedRequest(path: string, headers: string[], status = 200): RequestContext {
  const w = { uid: 'u1', namespace: 'shop', name: 'load-1', workloadName: 'load', serviceAccount: 'load', node: 'n1', ips: ['10.0.0.1'], labels: {}, meshed: true, hostNetwork: false, mtlsMode: 'STRICT' as const };
  const conn = newConnectionContext({ side: 'source', protocol: 'http1', source: sourceFromWorkload(w, 'spiffe://cluster.local/ns/shop/sa/load', '10.0.0.1'), original: { ip: '10.97.0.1', port: 80 }, service: undefined, destination: undefined, destinationPort: 0 });
  const ctx = new RequestContext(conn, 'http1', 'GET', path, 'web', 'http', headers);
  ctx.outcome.status = status;
  return ctx;
}

/** The little of MeshState a tap event reads, for node `node`. */
export const tapState = (node: string) => ({ nodeName: node, trustDomain: 'cluster.local', identityOf: () => 'spiffe://x' }) as unknown as MeshState;
