// Health that means something: liveness fails after a real event loop stall and after a burst of uncaught
// errors; readiness names capture and certificate problems. The watchdog and budget are also checked with
// a fake clock so the thresholds are exact.
import t from 'tap';
import { Registry } from 'prom-client';
import { silentLogger } from '../../common/log.js';
import { captureCheck, certificatesCheck } from '../../agent/health/checks.js';
import { Liveness, Readiness, serveHealth } from '../../agent/health/server.js';
import { CrashBudget } from '../../agent/lifecycle/crash-budget.js';
import { registerLifecycleMetrics } from '../../agent/lifecycle/metrics.js';
import { LoopWatchdog } from '../../agent/lifecycle/watchdog.js';

async function get(port: number, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.json() };
}

function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    /* block the event loop on purpose */
  }
}

t.test('a real event loop stall makes /healthz/live 503 for the window, then live again', async (t) => {
  // thresholds well above what a busy shared machine's scheduler does to a process on its own
  const wd = new LoopWatchdog({ intervalMs: 20, stallMs: 1000, windowMs: 2000 });
  wd.start();
  t.teardown(() => wd.stop());
  const live = new Liveness();
  live.add('event_loop', () => wd.liveProblem());
  const srv = await serveHealth(new Readiness(), '127.0.0.1', 0, silentLogger, live);
  t.teardown(() => srv.close());
  const eventually = async (status: number) => {
    const deadline = Date.now() + 15_000;
    let r = await get(srv.address.port, '/healthz/live');
    while (r.status !== status && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 100));
      r = await get(srv.address.port, '/healthz/live');
    }
    return r;
  };
  t.equal((await eventually(200)).status, 200, 'live before');
  busy(1500);
  await new Promise((r) => setTimeout(r, 60)); // let the late tick fire
  const res = await get(srv.address.port, '/healthz/live');
  t.equal(res.status, 503, 'not live after a 1.5 s block with a 1 s threshold');
  t.match(res.body, { live: false, failing: { event_loop: /blocked for \d+ ms/ } });
  t.ok(wd.stalls >= 1 && wd.maxBlockedMs >= 1000, `stall counted (${wd.stalls}, max ${wd.maxBlockedMs} ms)`);
  t.equal((await eventually(200)).status, 200, 'live again once the window passed');
});

t.test('watchdog with a fake clock: threshold is exact, ticks feed listeners', async (t) => {
  let now = 1000;
  const wd = new LoopWatchdog({ intervalMs: 100, stallMs: 1000, windowMs: 5000, now: () => now });
  const beats: number[] = [];
  wd.onTick((n) => beats.push(n));
  wd.onTick(() => {
    throw new Error('a failing listener does not stop the others');
  });
  wd.start();
  wd.stop();
  now += 100;
  wd.tick();
  now += 1099; // 999 ms late
  wd.tick();
  t.equal(wd.stalls, 0);
  t.equal(wd.liveProblem(), undefined);
  now += 1100; // 1000 ms late
  wd.tick();
  t.equal(wd.stalls, 1);
  t.match(wd.liveProblem(), /blocked for 1000 ms/);
  now += 5000;
  t.equal(wd.liveProblem(), undefined, 'forgotten after the window');
  t.same(beats, [1000, 1100, 2199, 3299]);
});

t.test('crash budget: the 5th uncaught error within a minute makes the agent not live', async (t) => {
  let now = 0;
  const b = new CrashBudget({ max: 5, windowMs: 60_000, now: () => now });
  for (let i = 0; i < 4; i++) b.record('exception');
  t.equal(b.liveProblem(), undefined, '4 are survived');
  now += 61_000;
  b.record('rejection');
  t.equal(b.liveProblem(), undefined, 'old ones left the window');
  for (let i = 0; i < 4; i++) b.record('exception');
  t.match(b.liveProblem(), /5 uncaught exceptions\/rejections within 60 s/);
  t.same(b.total, { exception: 8, rejection: 1 });
});

t.test('crash budget installed: a real uncaught exception is survived and counted, and shows in metrics', async (t) => {
  const b = new CrashBudget({ max: 2, windowMs: 60_000 });
  // tap installs its own handlers; ours must see the error and the process must keep running
  const uninstall = b.install(silentLogger);
  t.teardown(uninstall);
  const wd = new LoopWatchdog();
  const reg = new Registry();
  registerLifecycleMetrics(reg, { watchdog: wd, crashes: b });
  (process.emit as any)('uncaughtException', new Error('boom'), 'uncaughtException');
  process.emit('unhandledRejection' as any, new Error('rejected'), Promise.resolve());
  t.same(b.total, { exception: 1, rejection: 1 });
  t.match(b.liveProblem(), /2 uncaught/);
  const text = await reg.metrics();
  t.match(text, /weft_agent_uncaught_errors_total\{kind="exception"\} 1/);
  t.match(text, /weft_agent_uncaught_errors_total\{kind="rejection"\} 1/);
  t.match(text, /weft_agent_event_loop_stalls_total 0/);
});

t.test('readiness: capture check names the problem', async (t) => {
  let port: number | undefined;
  let err: string | undefined;
  const c = captureCheck({ kernelProxyPort: () => port, lastError: () => err }, 15001);
  t.match(c(), /not configured in the kernel/);
  port = 15002;
  t.match(c(), /steers to port 15002, the proxy listens on 15001/);
  port = 15001;
  t.equal(c(), undefined);
  err = 'map full';
  t.match(c(), /last capture reconcile failed: map full/);
});

t.test('readiness: certificates check gives new identities a grace, fails expired ones at once', async (t) => {
  let now = 0;
  const wanted = new Set<string>(['spiffe://td/ns/a/sa/x']);
  const held: { spiffeId: string; notAfter: Date }[] = [];
  const c = certificatesCheck({ wanted: () => wanted, held: () => held as any }, 10_000, () => now);
  t.equal(c(), undefined, 'within grace');
  now = 10_000;
  t.match(c(), /spiffe:\/\/td\/ns\/a\/sa\/x not issued after 10 s/);
  held.push({ spiffeId: 'spiffe://td/ns/a/sa/x', notAfter: new Date(20_000) });
  t.equal(c(), undefined, 'issued');
  now = 20_000;
  t.match(c(), /expired at/);
  wanted.clear();
  t.equal(c(), undefined, 'not wanted any more');
});
