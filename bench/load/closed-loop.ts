// Closed-loop loads written here because no Debian tool measures them the way the bench needs:
//  - tcpRoundTrips: plain TCP request/response over long-lived connections (an echo server upstream),
//    so an L4 path is measured without any HTTP.
//  - churn: a new connection per HTTP request (Connection: close), which is what capture, accept and
//    upstream connect cost; reported as requests (= connections) per second and latency.
import net from 'node:net';
import { performance } from 'node:perf_hooks';

import { encodeHistogram, latencyHistogram, percentiles, type Percentiles } from '../stats.js';
import { Http1Connection, type Http1Target } from './http1-client.js';

export interface ClosedLoopResult {
  completed: number;
  /** warm-up included */
  completedTotal: number;
  errors: number;
  rps: number;
  latencyUs: Percentiles;
  firstError?: string;
  histogram: string;
}

export interface TcpRoundTripOptions {
  host: string;
  port: number;
  connections: number;
  messageBytes: number;
  durationMs: number;
  warmupMs: number;
}

function echoOnce(sock: net.Socket, msg: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const onData = (d: Buffer) => {
      got += d.length;
      if (got >= msg.length) {
        sock.off('data', onData);
        sock.off('error', reject);
        resolve();
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.write(msg);
  });
}

function connect(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, noDelay: true });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

export async function tcpRoundTrips(o: TcpRoundTripOptions): Promise<ClosedLoopResult> {
  const h = latencyHistogram();
  const msg = Buffer.alloc(o.messageBytes, 0x61);
  const t0 = performance.now();
  const measureFrom = t0 + o.warmupMs;
  const end = measureFrom + o.durationMs;
  let completed = 0;
  let completedTotal = 0;
  let errors = 0;
  let firstError: string | undefined;
  const worker = async () => {
    let sock: net.Socket | undefined;
    while (performance.now() < end) {
      try {
        sock ??= await connect(o.host, o.port);
        const s0 = performance.now();
        await echoOnce(sock, msg);
        const now = performance.now();
        completedTotal++;
        if (s0 >= measureFrom) {
          completed++;
          h.recordValue(Math.max(1, Math.round((now - s0) * 1000)));
        }
      } catch (e) {
        errors++;
        firstError ??= (e as Error).message;
        sock?.destroy();
        sock = undefined;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    sock?.destroy();
  };
  await Promise.all(Array.from({ length: o.connections }, worker));
  return { completed, completedTotal, errors, rps: Math.round((completed / o.durationMs) * 1000), latencyUs: percentiles(h), ...(firstError ? { firstError } : {}), histogram: encodeHistogram(h) };
}

export interface ChurnOptions {
  target: Http1Target;
  concurrency: number;
  durationMs: number;
  warmupMs: number;
}

export async function churn(o: ChurnOptions): Promise<ClosedLoopResult> {
  const h = latencyHistogram();
  const t0 = performance.now();
  const measureFrom = t0 + o.warmupMs;
  const end = measureFrom + o.durationMs;
  let completed = 0;
  let completedTotal = 0;
  let errors = 0;
  let firstError: string | undefined;
  const worker = async () => {
    while (performance.now() < end) {
      const c = new Http1Connection({ ...o.target, close: true });
      const s0 = performance.now();
      try {
        const r = await c.request();
        const now = performance.now();
        if (r.status < 200 || r.status >= 300) throw new Error(`HTTP ${r.status}`);
        completedTotal++;
        if (s0 >= measureFrom) {
          completed++;
          h.recordValue(Math.max(1, Math.round((now - s0) * 1000)));
        }
      } catch (e) {
        if (s0 >= measureFrom) errors++;
        firstError ??= (e as Error).message;
        await new Promise((r) => setTimeout(r, 5));
      } finally {
        c.close();
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  return { completed, completedTotal, errors, rps: Math.round((completed / o.durationMs) * 1000), latencyUs: percentiles(h), ...(firstError ? { firstError } : {}), histogram: encodeHistogram(h) };
}
