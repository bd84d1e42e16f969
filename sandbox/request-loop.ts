// A client in a sandbox pod that sends one request after another with an unmodified curl (a new process and
// connection each) for a while, and stamps each with the pod's clock when it started and ended. The pods share
// the machine's clock, so a test or bench lines the requests up with its own events: "a config change takes
// effect for new requests within N ms" is read off the requests, not off a probe's own start-up time.
// One `weft sandbox exec` runs the whole loop, which stops by itself after `durationMs` (killing the exec
// client would leave the shell running in the pod).
import { spawn } from 'node:child_process';

import { WEFT_BIN } from './mesh.js';

export interface LoopSample {
  /** ms since the epoch, the pod's clock */
  start: number;
  end: number;
  /** what curl printed (the body, newlines removed), or its error */
  body: string;
}

export interface RequestLoop {
  /** resolves when the first request has been answered */
  running: Promise<void>;
  /** every request, once the loop has ended */
  done: Promise<LoopSample[]>;
}

/**
 * A meshed namespace and in it, on `node`, the pod `client` a loop runs in: it only sleeps (curl, sh and date
 * are the machine's own binaries, run in the pod's namespaces by `weft sandbox exec`). YAML documents.
 */
export function loopClientYaml(namespace: string, node: string): string {
  return `apiVersion: v1
kind: Namespace
metadata: { name: ${namespace}, labels: { weft.io/mesh: enabled } }
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: ${namespace}, labels: { app: client } }
spec: { nodeName: ${node}, containers: [{ name: main, command: [sleep, infinity] }] }
`;
}

const SCRIPT = `end=$(( $(date +%s%3N) + $2 ))
while :; do
  s=$(date +%s%3N)
  [ "$s" -ge "$end" ] && break
  b=$(curl -sS --max-time 2 "$1" 2>&1 | tr -d '\\n')
  echo "$s $(date +%s%3N) $b"
done`;

export function startRequestLoop(sandboxId: string, pod: string, url: string, durationMs: number): RequestLoop {
  const child = spawn(process.execPath, [WEFT_BIN, 'sandbox', 'exec', '--id', sandboxId, pod, '--', 'sh', '-c', SCRIPT, 'loop', url, String(Math.round(durationMs))], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let first: () => void = () => {};
  let failed: (e: Error) => void = () => {};
  const running = new Promise<void>((resolve, reject) => {
    first = resolve;
    failed = reject;
  });
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    if (out.includes('\n')) first();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const done = new Promise<LoopSample[]>((resolve, reject) => {
    child.on('close', (code) => {
      const samples = parseSamples(out);
      if (code !== 0 || samples.length === 0) {
        const e = new Error(`request loop in ${pod} exited ${code} after ${samples.length} requests: ${err.trim()}`);
        failed(e);
        return reject(e);
      }
      resolve(samples);
    });
  });
  return { running, done };
}

export function parseSamples(text: string): LoopSample[] {
  const out: LoopSample[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+) (\d+) ?(.*)$/.exec(line);
    if (m) out.push({ start: Number(m[1]), end: Number(m[2]), body: m[3]! });
  }
  return out;
}

export interface Effect {
  /** requests started at or after `at` and ended before `until` */
  after: number;
  /** the latest of them still answered the old way, ms after `at`; undefined: none */
  lastOldMs: number | undefined;
  /** from when (ms after `at`) every request started was answered the new way; undefined: never */
  allNewFromMs: number | undefined;
}

/**
 * When a change made at `at` (ms since the epoch) took effect for new requests: the first request start
 * after which every request was answered the new way (`isNew`), looking at the requests that started at or
 * after `at` and ended before `until` (the next change: a request stamped just before it may be sent after it,
 * curl starting a few ms after its stamp).
 */
export function effectOf(samples: LoopSample[], at: number, isNew: (body: string) => boolean, until = Infinity): Effect {
  const window = samples.filter((s) => s.start >= at && s.end < until);
  let lastOld = -1;
  window.forEach((s, i) => {
    if (!isNew(s.body)) lastOld = i;
  });
  const firstNew = window[lastOld + 1];
  return {
    after: window.length,
    lastOldMs: lastOld >= 0 ? window[lastOld]!.start - at : undefined,
    allNewFromMs: firstNew ? Math.max(0, firstNew.start - at) : undefined,
  };
}
