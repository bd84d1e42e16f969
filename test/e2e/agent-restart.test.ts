// Hitless agent restart on a real sandbox: both nodes' agents upgraded in place (`weft sandbox
// restart-agent`, the DaemonSet-with-maxSurge stand-in) while a client pod opens a new connection per
// request to a same-node and a cross-node service and keeps one cross-node TCP stream busy. Not one request
// may fail, and the stream must exchange data before, during and after each restart. The full-rate run is
// `node dist/bench/resilience/restart.js --rate 1000` (bench/resilience/README.md).
import t from 'tap';
import { runRestartScenario } from '../../bench/resilience/restart.js';
import { leftovers, testSandboxId } from '../helpers/sandbox.js';

t.test('agents restarted under load: zero failed requests, the long stream flows throughout', async (t) => {
  const id = testSandboxId();
  const run = await runRestartScenario({ id, rate: 50, nodes: ['node-1', 'node-2'], phaseMs: 3000, say: (l) => t.comment(l) });
  for (const r of run.restarts) t.equal(r.code, 0, `${r.node}: ${r.out}`);
  t.ok(run.load.ok >= 300, `requests answered: ${run.load.ok}`);
  const t0 = run.restarts[0]!.startedAt;
  const windows = run.restarts.map((r) => `${r.node} ${r.startedAt - t0}..${r.endedAt - t0} ms`).join(', ');
  const when = run.load.failures.slice(0, 5).map((f) => `${f.why} at ${f.at - t0} ms`);
  t.equal(run.load.failed, 0, `failed requests: ${JSON.stringify(run.load.errors)} ${when.join('; ')} (restarts: ${windows})`);
  t.ok(run.stream.before > 0, `stream echoes before: ${run.stream.before}`);
  run.stream.during.forEach((n, i) => t.ok(n > 0, `stream echoes during the ${run.restarts[i]!.node} restart: ${n}`));
  run.stream.after.forEach((n, i) => t.ok(n > 0, `stream echoes after the ${run.restarts[i]!.node} restart: ${n}`));
  t.equal(run.stream.error, '', 'the stream was never cut');
  t.ok(run.stream.longestGapMs < 2000, `the stream's longest silence: ${run.stream.longestGapMs} ms`);
  t.same(leftovers(id), [], 'the sandbox left nothing behind');
});
