// What the end-to-end tests read from a running sandbox: the agents' metrics (through the forwarded
// loopback ports the status JSON lists) as deltas between two scrapes, and packet captures on the underlay.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text exposition → samples (no HELP/TYPE lines). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

export type Scrape = Sample[];

export function sum(samples: Scrape, name: string, want: Record<string, string>): number {
  let total = 0;
  for (const s of samples) if (s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v)) total += s.value;
  return total;
}

/**
 * GET over a fresh connection each time: the forwarders (socat) close a connection the agent let go idle,
 * and a pooled keep-alive connection would then fail the next scrape.
 */
function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 15_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${url}: ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in 15 s`)));
    req.on('error', reject);
  });
}

/** Scrapes every node's agent (node name → samples). */
export async function scrapeAll(metricsUrls: Record<string, string>): Promise<Record<string, Scrape>> {
  const entries = await Promise.all(Object.entries(metricsUrls).map(async ([node, url]) => [node, parseMetrics(await get(url))] as const));
  return Object.fromEntries(entries);
}

export interface DeltaCheck {
  node: string;
  name: string;
  labels: Record<string, string>;
  /** the increase must be at least this */
  atLeast: number;
}

/**
 * Waits until every check's increase since `before` reaches its minimum (metrics land when a request or
 * connection completes, which may be just after the client returned). Returns the increases seen last.
 */
export async function deltasEventually(metricsUrls: Record<string, string>, before: Record<string, Scrape>, checks: DeltaCheck[], timeoutMs = 30_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await scrapeAll(metricsUrls);
    const deltas = checks.map((c) => sum(now[c.node]!, c.name, c.labels) - sum(before[c.node]!, c.name, c.labels));
    if (deltas.every((d, i) => d >= checks[i]!.atLeast) || Date.now() > deadline) return deltas;
    await sleep(250);
  }
}

/** A packet capture on an interface inside a network namespace (full packets, to a pcap file). */
export class Capture {
  private constructor(
    private readonly child: ReturnType<typeof spawn>,
    readonly file: string,
    private readonly stderr: () => string,
  ) {}

  static async start(netns: string, iface: string, file: string, filter: string): Promise<Capture> {
    const child = spawn('nsenter', [`--net=/run/netns/${netns}`, 'tshark', '-n', '-q', '-i', iface, '-s', '0', '-f', filter, '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const cap = new Capture(child, file, () => err);
    // tshark says "Capturing on 'iface'" once the capture is running; packets before that are lost.
    const deadline = Date.now() + 30_000;
    while (!err.includes('Capturing on')) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`tshark did not start capturing on ${iface} in ${netns}: ${err}`);
      }
      await sleep(100);
    }
    return cap;
  }

  /** Stops the capture (tshark flushes the file on SIGINT) and returns the raw pcap bytes. */
  async stop(): Promise<Buffer> {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGINT');
      await Promise.race([exited, sleep(15_000)]);
      if (this.child.exitCode === null && this.child.signalCode === null) {
        this.child.kill('SIGKILL');
        throw new Error(`tshark did not stop: ${this.stderr()}`);
      }
    }
    return readFileSync(this.file);
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  /** tshark fields of the packets matching a display filter, one array per packet. */
  fields(displayFilter: string, fields: string[], decodeAs: string[] = []): string[][] {
    const args = ['-n', '-r', this.file, ...decodeAs.flatMap((d) => ['-d', d]), '-Y', displayFilter, '-T', 'fields', ...fields.flatMap((f) => ['-e', f])];
    const r = spawnSync('tshark', args, { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`tshark ${args.join(' ')}: ${r.stderr}`);
    return r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t'));
  }
}
