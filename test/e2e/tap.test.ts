// `weft tap` and `weft top` on a real two-node sandbox, run as a user runs them (the sandbox's id in the
// environment, nothing else): a request from a pod on node-1 to a pod on node-2 is shown by both proxies
// (outbound on node-1, inbound on node-2) with both SPIFFE identities and mTLS, and its Authorization and
// Cookie values never appear, in -o json or in the lines; `weft top -o json` counts a burst of requests once
// each, per path, with the success rate.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { TapEvent, TapLine } from '../../common/tap.js';
import type { TopSnapshot } from '../../cli/top.js';
import { testSandboxId, weft } from '../helpers/sandbox.js';
import { weftBin } from '../helpers/paths.js';

const id = testSandboxId();
const dir = mkdtempSync(join(tmpdir(), 'weft-tap-e2e-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'tap-e2e-secret-7c1d';
const SPIFFE = (sa: string) => `spiffe://cluster.local/ns/shop/sa/${sa}`;

writeFileSync(join(dir, 'server.mjs'), `import { createServer } from 'node:http';
createServer((req, res) => { res.statusCode = req.url.startsWith('/fail') ? 500 : 200; res.end('ok\\n'); }).listen(8080);
`);
writeFileSync(
  join(dir, 'spec.yaml'),
  `apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { weft.io/mesh: enabled } }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: web, namespace: shop }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: client, namespace: shop }
---
apiVersion: v1
kind: Pod
metadata: { name: web, namespace: shop, labels: { app: web } }
spec:
  nodeName: node-2
  serviceAccountName: web
  containers:
    - { name: web, command: [node, server.mjs], ports: [{ name: http, containerPort: 8080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: 8080, appProtocol: http }]
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: shop, labels: { app: client } }
spec:
  nodeName: node-1
  serviceAccountName: client
  containers:
    - { name: client, command: [sleep, infinity] }
`,
);

const env = { ...process.env, WEFT_SANDBOX_ID: id, NO_COLOR: '1' };
const run = (args: string[], timeout = 60_000) => spawnSync(process.execPath, [weftBin, ...args], { encoding: 'utf8', env, timeout });
const curl = (path: string, headers: string[] = []) => run(['sandbox', 'exec', 'shop/client', '--', 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', ...headers.flatMap((h) => ['-H', h]), `http://web.shop.svc.cluster.local${path}`]);

t.teardown(() => {
  const r = weft(['sandbox', 'down', '--id', id], { timeoutMs: 180_000 });
  if (r.status !== 0) console.error(`sandbox down --id ${id} failed: ${r.stderr}`);
});

/** A weft command in the background, its stdout as lines; `until` resolves once `pred` holds for a line. */
function background(args: string[]) {
  const child = spawn(process.execPath, [weftBin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: { pred: (l: string) => boolean; resolve: () => void }[] = [];
  const lines: string[] = [];
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const parts = out.split('\n');
    out = parts.pop()!;
    for (const l of parts) {
      lines.push(l);
      for (const w of [...waiters]) if (w.pred(l)) (waiters.splice(waiters.indexOf(w), 1), w.resolve());
    }
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return {
    lines,
    stderr: () => err,
    exited,
    // SIGTERM: bin/weft.js may run the command in a child on a newer Node, and passes SIGTERM on (Ctrl-C
    // reaches both through the terminal's process group; a signal to one pid does not)
    stop: () => child.kill('SIGTERM'),
    until: (pred: (l: string) => boolean, ms: number, what: string) =>
      new Promise<void>((resolve, reject) => {
        if (lines.some(pred)) return resolve();
        const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}; stdout so far:\n${lines.join('\n')}\nstderr:\n${err}`)), ms);
        waiters.push({ pred, resolve: () => (clearTimeout(timer), resolve()) });
      }),
  };
}

t.test('weft tap and weft top on a two-node sandbox', async (t) => {
  const up = weft(['sandbox', 'up', '--id', id, '--nodes', '2', '-f', join(dir, 'spec.yaml'), '--detach', '--no-prometheus'], { timeoutMs: 240_000 });
  t.equal(up.status, 0, `sandbox up: ${up.stderr.slice(-2000)}`);
  if (up.status !== 0) return;
  // the mesh answers (the client's capture and the Service are in force)
  let code = '';
  for (let i = 0; i < 30 && code !== '200'; i++) {
    code = curl('/ready').stdout;
    if (code !== '200') await new Promise((r) => setTimeout(r, 1000));
  }
  t.equal(code, '200', 'client -> web answers through the mesh');

  // -o json: both proxies' views of one request, identities, mTLS, and no secret anywhere
  const tap = background(['tap', 'shop', '-o', 'json']);
  await tap.until((l) => l.includes('"type":"start"'), 30_000, 'the tap to start');
  const start = JSON.parse(tap.lines[0]!) as Extract<TapLine, { type: 'start' }>;
  t.same(start.nodes, ['node-1', 'node-2'], 'both agents tapped');
  t.same(start.missing, []);
  t.equal(curl('/hello?x=1', [`Authorization: Bearer ${SECRET}`, `Cookie: session=${SECRET}`]).stdout, '200');
  const isHello = (dirn: string) => (l: string) => l.includes('"/hello?x=1"') && l.includes(`"direction":"${dirn}"`);
  await tap.until(isHello('outbound'), 20_000, "node-1's outbound view");
  await tap.until(isHello('inbound'), 20_000, "node-2's inbound view");
  tap.stop();
  t.equal(await tap.exited, 0, `weft tap stops cleanly on SIGTERM (as on Ctrl-C): ${tap.stderr()}`);
  const views = tap.lines.filter((l) => l.includes('"/hello?x=1"')).map((l) => JSON.parse(l) as TapEvent);
  const out = views.find((e) => e.direction === 'outbound')!;
  const inn = views.find((e) => e.direction === 'inbound')!;
  t.match(out, { node: 'node-1', reporter: 'source', tls: true, method: 'GET', authority: 'web.shop.svc.cluster.local', status: 200 });
  t.match(out.source, { workload: 'client', namespace: 'shop', pod: 'client', principal: SPIFFE('client') });
  t.match(out.destination, { workload: 'web', namespace: 'shop', pod: 'web', principal: SPIFFE('web'), service: 'web.shop.svc.cluster.local' });
  t.match(inn, { node: 'node-2', reporter: 'destination', tls: true, status: 200 });
  t.match(inn.source, { workload: 'client', namespace: 'shop', principal: SPIFFE('client') });
  t.match(inn.destination, { workload: 'web', pod: 'web', principal: SPIFFE('web') });
  for (const e of views) t.same(e.headers.filter(([k]) => /^(authorization|cookie)$/i.test(k)).map(([, v]) => v), ['<redacted>', '<redacted>'], `${e.node}: authorization and cookie redacted`);
  t.notOk(tap.lines.join('\n').includes(SECRET), 'the secret is nowhere in the tap output');

  // the lines a person reads, filtered to one path, stopping after the two views
  const lines = background(['tap', 'shop/web', '--path', '/plain', '-n', '2']);
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(curl('/plain', [`Authorization: Bearer ${SECRET}`]).stdout, '200');
  t.equal(await lines.exited, 0, `weft tap -n 2 ends by itself: ${lines.stderr()}`);
  t.equal(lines.lines.length, 2);
  t.match(lines.lines.find((l) => l.includes('dir=out')), /node=node-1 dir=out src=shop\/client src_pod=client src_id=spiffe:\/\/cluster\.local\/ns\/shop\/sa\/client dst=shop\/web dst_pod=web dst_id=spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web tls=true :method=GET :authority=web\.shop\.svc\.cluster\.local :path=\/plain :status=200 latency=[\d.]+ms/);
  t.match(lines.lines.find((l) => l.includes('dir=in')), /node=node-2 dir=in src=shop\/client .*tls=true .*:status=200/);
  t.notOk(lines.lines.join('\n').includes(SECRET));
  t.notMatch(lines.lines.join('\n'), /\u001b\[/, 'no colour off a terminal');

  // weft top -o json: a burst of 40 requests to /burst (query strings differ) and 10 to /fail, each counted once
  const top = background(['top', 'shop', '-o', 'json', '--interval', '1s', '--duration', '20s']);
  await top.until((l) => l.startsWith('{'), 20_000, 'the first table');
  const burst = run(['sandbox', 'exec', 'shop/client', '--', 'sh', '-c', 'for i in $(seq 40); do curl -s -o /dev/null "http://web.shop.svc.cluster.local/burst?i=$i"; done; for i in $(seq 10); do curl -s -o /dev/null http://web.shop.svc.cluster.local/fail; done'], 120_000);
  t.equal(burst.status, 0, burst.stderr);
  t.equal(await top.exited, 0, `weft top ends after --duration: ${top.stderr()}`);
  const last = JSON.parse(top.lines.at(-1)!) as TopSnapshot;
  const row = (path: string) => last.rows.find((r) => r.path === path);
  t.match(row('/burst'), { source: 'shop/client', destination: 'shop/web', method: 'GET', count: 40, success: 1 }, '40 requests to /burst, each once');
  t.match(row('/fail'), { source: 'shop/client', destination: 'shop/web', count: 10, success: 0 }, '10 failures');
  t.ok(row('/burst')!.bestMs <= row('/burst')!.worstMs);
  t.same(last.dropped, { queue: 0, rate: 0, controller: 0 }, 'nothing dropped at this rate');
  t.equal(last.requests, 50);

  // an error that says what to do
  const bad = run(['tap', '--status', '6xx']);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /WEFT_ERR_CONFIG: --status: "6xx" is not a status class/);
});
