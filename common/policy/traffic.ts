// Compiled TrafficPolicy (issue 13 owns and refines this shape): the target Service resolved, durations in
// milliseconds, defaults filled in.
export interface CompiledTraffic {
  /** "<namespace>/<name>" of the Service */
  service: string;
  /** only this service port; all ports when undefined */
  port?: number;
  spec: unknown;
}
