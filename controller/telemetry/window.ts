// What the golden metrics are computed from: the increase of the request counters and duration buckets over
// a window, plus the current TCP connection counters. Two sources fill it the same way: two scrapes of the
// agents (controller/telemetry/scraper.ts) or PromQL increase() over the same series (prometheus.ts).
import type { Sample } from './exposition.js';

export interface WindowData {
  /** length of the window the increases cover, in seconds */
  seconds: number;
  /** increase of istio_requests_total per series */
  requests: Sample[];
  /** increase of istio_request_duration_milliseconds_bucket per series (label le) */
  durationBuckets: Sample[];
  /** increase of istio_request_bytes_sum / istio_response_bytes_sum, when the agents export them */
  requestBytes: Sample[];
  responseBytes: Sample[];
  /** current istio_tcp_connections_opened_total and _closed_total */
  tcpOpened: Sample[];
  tcpClosed: Sample[];
  /** where the data came from: "prometheus" or "agents" */
  source: 'prometheus' | 'agents';
  /** when the window ends (ISO) */
  at: string;
}

export const REQUESTS = 'istio_requests_total';
export const DURATION_BUCKET = 'istio_request_duration_milliseconds_bucket';
export const REQUEST_BYTES_SUM = 'istio_request_bytes_sum';
export const RESPONSE_BYTES_SUM = 'istio_response_bytes_sum';
export const TCP_OPENED = 'istio_tcp_connections_opened_total';
export const TCP_CLOSED = 'istio_tcp_connections_closed_total';

/** The labels the golden metrics group by (Istio's standard names). */
export const GROUP_LABELS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'destination_workload',
  'destination_workload_namespace',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'connection_security_policy',
  'response_code',
  'request_protocol',
] as const;
