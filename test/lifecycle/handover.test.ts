// Hitless listener handover, on the real kernel in a test network namespace: an old and a new "agent"
// (test/lifecycle/fixtures/reuse-echo: the agent's SO_REUSEPORT listener and SIGTERM drain around an echo
// server) share a port while a client opens new connections back to back and keeps one long connection
// busy. The old one is stopped with its event loop blocked first, so connections sit in its accept queue
// when it closes its listener. With tcp_migrate_req (what the agent sets) not one connection fails and the
// long one keeps exchanging data; without it the same run loses connections, which shows the test sees
// the difference.
import t, { type Test } from 'tap';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { inNetns } from '../../native/netns.js';
import { enableRequestMigration, MIGRATE_SYSCTL } from '../../agent/lifecycle/reuseport.js';
import { distRoot } from '../helpers/paths.js';
import { sweepStale } from '../helpers/netns.js';

const ECHO = join(distRoot, 'test', 'lifecycle', 'fixtures', 'reuse-echo.js');
const LOAD = join(distRoot, 'test', 'lifecycle', 'fixtures', 'conn-load.js');
const PORT = 7001;

let seq = 0;
function makeNetns(t: Test): string {
  const name = `weft-t${process.pid}-labho${seq++}`;
  execFileSync('ip', ['netns', 'add', name]);
  t.teardown(() => execFileSync('ip', ['netns', 'del', name]));
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

function startIn(t: Test, ns: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  const c = spawn('nsenter', [`--net=/run/netns/${ns}`, '--', process.execPath, ...args], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  t.teardown(() => {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  return c;
}

function line(c: ChildProcess, re: RegExp, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; got: ${buf}`)), timeoutMs);
    const on = (d: Buffer) => {
      buf += d.toString();
      const m = buf.split('\n').find((l) => re.test(l));
      if (m) {
        clearTimeout(timer);
        c.stdout!.off('data', on);
        resolve(m);
      }
    };
    c.stdout!.on('data', on);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Summary {
  ok: number;
  failed: number;
  errors: Record<string, number>;
  long: { echoes: number; maxGapMs: number; error: string };
}

async function restartUnderLoad(t: Test, migrate: boolean): Promise<{ summary: Summary; outcome: string }> {
  const ns = makeNetns(t);
  if (migrate) t.equal(inNetns(`/run/netns/${ns}`, () => enableRequestMigration()), 'set', 'the agent turns tcp_migrate_req on in its netns');
  else execFileSync('ip', ['netns', 'exec', ns, 'sh', '-c', `echo 0 > ${MIGRATE_SYSCTL}`]);
  const old = startIn(t, ns, [ECHO, String(PORT)], { WEFT_TEST_BLOCK_MS: '400' });
  await line(old, /^listening \d+/);
  const load = startIn(t, ns, [LOAD, String(PORT), '8']);
  await line(load, /^started/);
  await sleep(800); // before
  const successor = startIn(t, ns, [ECHO, String(PORT)]);
  await line(successor, /^listening \d+/);
  const handedOver = line(old, /^handover|^drained/);
  old.kill('SIGTERM');
  const outcome = await handedOver;
  await sleep(800); // after: the old one still drains (the long connection may be on it)
  const done = line(load, /^\{/);
  load.stdin!.end();
  return { summary: JSON.parse(await done) as Summary, outcome };
}

t.before(() => sweepStale());

t.test('with tcp_migrate_req: zero failed connections and the long connection keeps flowing across the handover', async (t) => {
  const { summary, outcome } = await restartUnderLoad(t, true);
  t.match(outcome, /^handover: listener closed/, 'the old one saw its successor and closed its listener at once');
  t.ok(summary.ok > 50, `connections made during the run: ${summary.ok}`);
  t.equal(summary.failed, 0, `failed connections: ${JSON.stringify(summary.errors)}`);
  t.equal(summary.long.error, '', 'the long connection was never cut');
  t.ok(summary.long.maxGapMs < 1500, `the long connection's longest silence: ${summary.long.maxGapMs} ms (old agent blocked 400 ms)`);
});

t.test('without it the same restart drops queued connections (the test sees the difference)', async (t) => {
  const { summary } = await restartUnderLoad(t, false);
  t.ok(summary.failed > 0, `failed connections without migration: ${summary.failed} ${JSON.stringify(summary.errors)}`);
});
