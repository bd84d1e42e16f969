// Open-loop HTTP/1.1 load: requests are due on a fixed schedule (rate per second) whatever the server does,
// and each one's latency is measured from the time it was *due*, not from when a connection was free to
// send it. A slow response therefore delays the requests queued behind it and they are charged for the
// wait, as real users would be: no coordinated omission (the wrk2 method). Requests are spread over a
// fixed set of keep-alive connections, one in flight per connection.
import { performance } from 'node:perf_hooks';

import { encodeHistogram, latencyHistogram, percentiles, type Percentiles } from '../stats.js';
import { Http1Connection, type Http1Target } from './http1-client.js';

export interface OpenLoopOptions {
  target: Http1Target;
  /** requests per second */
  rate: number;
  connections: number;
  /** measured period; requests due in the warm-up before it are sent but not recorded */
  durationMs: number;
  warmupMs: number;
  /** requests still unanswered this long after the schedule ends count as timed out */
  drainMs?: number;
}

export interface OpenLoopResult {
  rate: number;
  connections: number;
  /** requests due in the measured period */
  scheduled: number;
  completed: number;
  /** responses received, warm-up included (what the proxy's CPU time is divided by) */
  completedTotal: number;
  errors: number;
  /** non-2xx responses */
  badStatus: number;
  /** achieved completions per second over the measured period */
  rps: number;
  /** from the due time (what the bench reports) */
  latencyUs: Percentiles;
  /** from the moment the request was written (service time; ignores queueing) */
  serviceUs: Percentiles;
  /** how late the generator itself sent requests (timer and queueing), a check on the generator */
  sendLagUs: Percentiles;
  firstError?: string;
  histogram: string;
}

export async function openLoop(o: OpenLoopOptions): Promise<OpenLoopResult> {
  if (!(o.rate > 0) || !(o.connections > 0)) throw new Error('rate and connections must be positive');
  const lat = latencyHistogram();
  const svc = latencyHistogram();
  const lag = latencyHistogram();
  const conns = Array.from({ length: o.connections }, () => new Http1Connection(o.target));
  const idle = [...conns];
  const queue: number[] = []; // due times (ms, performance.now clock) of requests waiting for a connection
  const interval = 1000 / o.rate;
  const t0 = performance.now() + 5;
  const measureFrom = t0 + o.warmupMs;
  const end = measureFrom + o.durationMs;
  let next = 0; // index of the next request to schedule
  let scheduled = 0;
  let completed = 0;
  let completedTotal = 0;
  let errors = 0;
  let badStatus = 0;
  let inflight = 0;
  let firstError: string | undefined;
  let finish: () => void = () => {};
  const done = new Promise<void>((r) => (finish = r));
  let scheduling = true;

  const record = (due: number, sent: number, now: number) => {
    if (due < measureFrom) return;
    lat.recordValue(Math.max(1, Math.round((now - due) * 1000)));
    svc.recordValue(Math.max(1, Math.round((now - sent) * 1000)));
    lag.recordValue(Math.max(1, Math.round((sent - due) * 1000)));
  };

  const send = (conn: Http1Connection, due: number) => {
    inflight++;
    const sent = performance.now();
    conn.request().then(
      (r) => {
        inflight--;
        const now = performance.now();
        completedTotal++;
        if (due >= measureFrom) {
          if (r.status >= 200 && r.status < 300) completed++;
          else badStatus++;
        }
        record(due, sent, now);
        release(conn);
      },
      (e: Error) => {
        inflight--;
        if (due >= measureFrom) errors++;
        firstError ??= e.message;
        conn.close();
        release(conn);
      },
    );
  };

  const release = (conn: Http1Connection) => {
    const due = queue.shift();
    if (due !== undefined) send(conn, due);
    else idle.push(conn);
    if (!scheduling && inflight === 0 && queue.length === 0) finish();
  };

  const tick = () => {
    const now = performance.now();
    while (t0 + next * interval <= now && t0 + next * interval < end) {
      const due = t0 + next * interval;
      next++;
      if (due >= measureFrom) scheduled++;
      const conn = idle.pop();
      if (conn) send(conn, due);
      else queue.push(due);
    }
    const nextDue = t0 + next * interval;
    if (nextDue >= end) {
      scheduling = false;
      if (inflight === 0 && queue.length === 0) finish();
      return;
    }
    setTimeout(tick, Math.max(0, nextDue - performance.now()));
  };
  setTimeout(tick, 5);

  const drainMs = o.drainMs ?? 5000;
  let timedOut = false;
  await Promise.race([
    done,
    (async () => {
      // wait for the schedule to end, then give stragglers drainMs
      while (scheduling) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, drainMs).unref());
      timedOut = true;
    })(),
  ]);
  if (timedOut) {
    // Unanswered and never-sent requests are charged the time they waited, then counted as errors.
    const now = performance.now();
    for (const due of queue) if (due >= measureFrom) lat.recordValue(Math.round((now - due) * 1000));
    errors += queue.filter((d) => d >= measureFrom).length + inflight;
    firstError ??= `${inflight + queue.length} requests unanswered ${drainMs} ms after the schedule ended`;
  }
  for (const c of conns) c.close();
  return {
    rate: o.rate,
    connections: o.connections,
    scheduled,
    completed,
    completedTotal,
    errors,
    badStatus,
    rps: Math.round((completed / o.durationMs) * 1000),
    latencyUs: percentiles(lat),
    serviceUs: percentiles(svc),
    sendLagUs: percentiles(lag),
    ...(firstError ? { firstError } : {}),
    histogram: encodeHistogram(lat),
  };
}
