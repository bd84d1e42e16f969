// Closed-loop tools from Debian, run inside the client pod: wrk (HTTP/1.1 max throughput) and h2load
// (HTTP/2 and gRPC-shaped requests). Their text output is parsed here; a run whose output does not parse
// or that saw errors is reported as such, never as a number.

/** "1.23ms" / "456us" / "0.5s" / "789.00ns" → µs */
export function durationUs(text: string): number {
  const us = durationUsRaw(text);
  return Number.isFinite(us) ? Math.round(us * 1000) / 1000 : us;
}

function durationUsRaw(text: string): number {
  const m = /^([\d.]+)\s*(ns|us|µs|ms|s|m)$/.exec(text.trim());
  if (!m) return NaN;
  const v = Number(m[1]);
  switch (m[2]) {
    case 'ns':
      return v / 1000;
    case 'us':
    case 'µs':
      return v;
    case 'ms':
      return v * 1000;
    case 's':
      return v * 1e6;
    default:
      return v * 60e6;
  }
}

export interface ToolResult {
  rps: number;
  requests: number;
  errors: number;
  /** µs; only what the tool prints (wrk: 50/90/99; h2load: mean and max) */
  latencyUs: Record<string, number>;
}

export function wrkArgs(url: string, connections: number, seconds: number): string[] {
  // wrk takes whole seconds only
  return ['wrk', '-t1', `-c${connections}`, `-d${Math.max(1, Math.round(seconds))}s`, '--latency', url];
}

export function parseWrk(out: string): ToolResult {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  if (!Number.isFinite(rps) || !Number.isFinite(requests)) throw new Error(`wrk output did not parse: ${out.slice(0, 300)}`);
  let errors = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (sock) errors += Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4]);
  const latencyUs: Record<string, number> = {};
  for (const m of out.matchAll(/^\s+(50|75|90|99)%\s+([\d.]+\w+)\s*$/gm)) latencyUs[`p${m[1]}`] = durationUs(m[2]!);
  return { rps, requests, errors, latencyUs };
}

export function h2loadArgs(url: string, o: { connections: number; streams: number; seconds: number; warmupSeconds: number; grpc?: { bodyFile: string } }): string[] {
  const ms = (s: number) => `${Math.round(s * 1000)}ms`;
  const a = ['h2load', '-t1', `-c${o.connections}`, `-m${o.streams}`, `--duration=${ms(o.seconds)}`, `--warm-up-time=${ms(o.warmupSeconds)}`];
  if (o.grpc) a.push('-d', o.grpc.bodyFile, '-H', 'content-type: application/grpc', '-H', 'te: trailers');
  a.push(url);
  return a;
}

export function parseH2load(out: string): ToolResult {
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1]);
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  if (!Number.isFinite(rps) || !req) throw new Error(`h2load output did not parse: ${out.slice(0, 300)}`);
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  const non2xx = status ? Number(status[2]) + Number(status[3]) + Number(status[4]) : 0;
  const t = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)/.exec(out);
  const latencyUs: Record<string, number> = t ? { min: durationUs(t[1]!), max: durationUs(t[2]!), mean: durationUs(t[3]!) } : {};
  return { rps, requests: Number(req[4]), errors: Number(req[5]) + Number(req[6]) + Number(req[7]) + non2xx, latencyUs };
}

/** A gRPC unary request frame: uncompressed flag, 4-byte big-endian length, then `message`. */
export function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}
