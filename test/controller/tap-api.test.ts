// The tap path end to end in one process: two agents' tap streams over real gRPC/TLS to a real controller,
// GET /api/v1/tap read by the CLI's client (cli/tap-client.ts). Opening a tap reaches both agents with its
// filter and rate cap; their events and drop counts come through; closing the HTTP response stops the tap
// on every agent; an agent that connects while a tap is open gets it; taps need loopback or the operator
// token; bad filters are refused with the field named.
import t from 'tap';
import { readFileSync } from 'node:fs';

import { TapHub } from '../../agent/observe/tap.js';
import { TapStreamClient } from '../../agent/observe/tap-stream.js';
import { silentLogger } from '../../common/log.js';
import type { TapLine } from '../../common/tap.js';
import { runTap, tapRequest } from '../../cli/tap-client.js';
import type { Target } from '../../cli/target.js';
import { connectAgent, makeEnv, runController, until } from './harness.js';
import { finishedRequest, tapState } from '../helpers/tap-request.js';

const request = (path: string) => finishedRequest(path, ['authorization', 'Bearer nope']);
const state = tapState;

t.test('agents, controller and the CLI client over real gRPC and HTTP', async (t) => {
  const env = makeEnv(t);
  const c = await runController(env);
  t.teardown(() => c.close());
  const bundle = readFileSync(c.trustBundleFile, 'utf8');
  const agent = (node: string) => {
    const conn = connectAgent({ grpcPort: c.grpcPort, trustBundlePem: bundle, controllerIdentity: c.controllerIdentity }, node);
    const hub = new TapHub();
    const client = new TapStreamClient({ connection: conn, hub, log: silentLogger, flushMs: 20, retryInitialMs: 50 });
    client.start();
    t.teardown(() => (client.stop(), conn.close()));
    return hub;
  };
  const hub1 = agent('node-1');
  const target: Target = { kind: 'flag', controller: `http://127.0.0.1:${c.webPort}`, agents: [], prometheus: null, describe: 'test', close() {} };

  const lines: TapLine[] = [];
  const ac = new AbortController();
  const req = tapRequest({ path: '/api', 'max-rps': '5' }, ['shop'], 'tap');
  // the agent's stream may still be opening: the controller then sends the tap when it attaches
  const done = runTap(target, req, (l) => void lines.push(l), ac.signal);
  await until(() => hub1.active, 5000, 'node-1 got the tap');
  const hub2 = agent('node-2');
  await until(() => hub2.active, 5000, 'node-2, connecting later, got the open tap');
  t.equal(lines[0]?.type, 'start');
  const start = lines[0] as Extract<TapLine, { type: 'start' }>;
  t.equal(start.maxRps, 5);

  for (let i = 0; i < 8; i++) hub1.offer(request(`/api/${i}`), state('node-1'));
  hub1.offer(request('/other'), state('node-1'));
  hub2.offer(request('/api/two'), state('node-2'));
  await until(() => lines.filter((l) => l.type === 'request').length >= 6 && lines.some((l) => l.type === 'drops'), 5000, 'events and drops');
  const reqs = lines.filter((l): l is Extract<TapLine, { type: 'request' }> => l.type === 'request');
  t.same(reqs.filter((e) => e.node === 'node-1').map((e) => e.path), ['/api/0', '/api/1', '/api/2', '/api/3', '/api/4'], 'node-1: five within the cap, filtered by path on the agent');
  t.same(reqs.filter((e) => e.node === 'node-2').map((e) => e.path), ['/api/two']);
  const drops = lines.filter((l): l is Extract<TapLine, { type: 'drops' }> => l.type === 'drops');
  t.same(drops.map((d) => [d.node, d.rate, d.queue]), [['node-1', 3, 0]], 'the three over the cap are reported');
  t.notMatch(JSON.stringify(lines), /Bearer nope/, 'no authorization value reaches the tapper');

  ac.abort();
  await done;
  await until(() => !hub1.active && !hub2.active, 5000, 'the tap stopped on every agent');
  t.pass('closing the tap stops it everywhere');
});

t.test('taps need loopback or the operator token; filters are checked', async (t) => {
  const env = makeEnv(t);
  const c = await runController(env, { operatorToken: 'op-token-0123456789' });
  t.teardown(() => c.close());
  const base = `http://127.0.0.1:${c.webPort}/api/v1/tap`;
  const noToken = await fetch(base);
  t.equal(noToken.status, 401);
  t.match(await noToken.json(), { error: { code: 'WEFT_ERR_OPERATOR_AUTH' } });
  const auth = { authorization: 'Bearer op-token-0123456789' };
  const bad = await fetch(`${base}?status=6xx`, { headers: auth });
  t.equal(bad.status, 400);
  t.match(await bad.json(), { error: { code: 'WEFT_ERR_CONFIG', message: /--status/ } });
  const unknown = await fetch(`${base}?bodies=1`, { headers: auth });
  t.equal(unknown.status, 400, 'an unknown parameter is refused, not ignored');
  const ac = new AbortController();
  const ok = await fetch(base, { headers: auth, signal: ac.signal });
  t.equal(ok.status, 200);
  const reader = ok.body!.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  t.match(JSON.parse(first.split('\n')[0]!), { type: 'start', nodes: [], missing: ['node-1', 'node-2'] }, 'no agent connected: the start line says which are missing');
  ac.abort();
});

t.test('the CLI checks its filters before connecting', async (t) => {
  t.throws(() => tapRequest({ to: 'Shop/Web' }, [], 'tap'), { code: 'WEFT_ERR_CONFIG', message: /--to/ });
  t.throws(() => tapRequest({ 'max-rps': '5000' }, [], 'tap'), { message: /--max-rps/ });
  t.throws(() => tapRequest({ duration: 'soon' }, [], 'tap'), { message: /--duration/ });
  t.throws(() => tapRequest({}, ['a', 'b'], 'top'), { message: /weft top/ });
  const r = tapRequest({ method: 'post', status: '5xx', duration: '2s' }, ['shop/web'], 'tap');
  t.equal(r.query.get('selector'), 'shop/web');
  t.equal(r.query.get('method'), 'post');
  t.equal(r.durationMs, 2000);
});

t.test('a controller going away ends the tap with an error that says what to do', async (t) => {
  const env = makeEnv(t);
  const c = await runController(env);
  const target: Target = { kind: 'flag', controller: `http://127.0.0.1:${c.webPort}`, agents: [], prometheus: null, describe: 'test', close() {} };
  let started = false;
  const done = runTap(target, tapRequest({}, [], 'tap'), (l) => void (started ||= l.type === 'start'), new AbortController().signal);
  await until(() => started, 5000, 'the start line');
  await c.close();
  await t.rejects(done, { code: 'WEFT_ERR_TAP', message: /ended the tap|broke/ });
});
