// What the kernel half of the data path (agent/redirect, eBPF) tells the proxy about a captured
// connection. The proxy depends on this interface only; tests pass a fake.

export interface SocketAddress {
  ip: string;
  port: number;
}

export interface OriginalDestination {
  /** where the pod meant to connect (service VIP or pod IP), before connect4/connect6 rewrote it */
  ip: string;
  port: number;
  family: 4 | 6;
  /** cgroup v2 id (inode) of the connecting socket's cgroup: the source pod, as the kernel saw it */
  cgroupId: bigint;
}

export interface ConnectionLookup {
  /**
   * For a connection the proxy accepted on its outbound listener: `peer` is the accepted socket's remote
   * address (the pod's ip:port), `local` its local address (the proxy's). Returns undefined when the
   * connection was not redirected by Weft (then the proxy must refuse it: it does not know where to go).
   */
  lookup(peer: SocketAddress, local: SocketAddress): OriginalDestination | undefined;
}
