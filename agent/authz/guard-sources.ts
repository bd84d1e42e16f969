// The addresses the STRICT inbound guard (bpf/inbound_guard.c) accepts plaintext SYNs from: this node's
// own addresses. The node proxy delivers to a local pod from the node's network namespace, and the kernel
// picks the source address of the route to the pod (on the sandbox and most CNIs the pod bridge's or the
// gateway's address, not the node IP the proxy listens on); before this list held only the listen address,
// a STRICT workload refused every meshed connection. Another pod cannot borrow these addresses: a spoofed
// SYN's SYN-ACK goes to the node, which answers it with a reset, so no connection is ever established.
// A hostNetwork process on the node shares them (see docs/authz.md).
import { networkInterfaces } from 'node:os';

export function nodeAddresses(ifaces: ReturnType<typeof networkInterfaces> = networkInterfaces()): string[] {
  const out = new Set<string>();
  for (const list of Object.values(ifaces)) {
    for (const a of list ?? []) {
      if (a.internal) continue;
      // link-local v6 needs a zone and is never the source of a routed connection to a pod
      if (a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80:')) continue;
      out.add(a.address);
    }
  }
  return [...out].sort();
}
