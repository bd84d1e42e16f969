// The node proxy's and controller's ports, fixed by the design (Istio's numbering).
export const PORTS = {
  /** outbound: where connect4/connect6 send captured connections */
  outbound: 15001,
  /** inbound tunnel: mTLS (TLS 1.3) + HTTP/2 CONNECT from other node proxies */
  inboundTunnel: 15008,
  /** admin: config dump, certificates, connections; loopback only */
  admin: 15000,
  /** Prometheus metrics */
  metrics: 15020,
  /** health and readiness */
  health: 15021,
  /** controller gRPC over TLS */
  controllerGrpc: 15012,
  /** controller web page and HTTP API */
  controllerWeb: 15014,
} as const;

/** SO_MARK set on the proxy's own upstream sockets so capture never rewrites them (loop avoidance). */
export const PROXY_SO_MARK = 0x539;
