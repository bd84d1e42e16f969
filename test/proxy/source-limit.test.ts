// Per-source-pod connection cap (issue 15's limits): past maxConnectionsPerSource one pod's next captured
// connection is reset at once and counted, while another pod is served as before; closing one frees a slot.
import t from 'tap';
import net from 'node:net';
import { dialFrom, listen, metricValue, startMesh, type PodSpec } from './fixtures/mesh.js';

const PODS: PodSpec[] = [
  { name: 'greedy', node: 'node-a', ip: '127.0.10.1' },
  { name: 'other', node: 'node-a', ip: '127.0.10.3' },
  { name: 'echo', node: 'node-a', ip: '127.0.10.8' },
];
const VIP = '127.0.97.60';

t.test('one pod over its cap is refused; another pod is not', async (t) => {
  const echo = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  const port = await listen(echo, '127.0.10.8');
  const mesh = await startMesh(PODS, [{ name: 'echo', vip: VIP, port: 90, targetPort: port, pods: ['echo'], appProtocol: 'tcp' }], { limits: { maxConnectionsPerSource: 3 } });
  t.teardown(async () => {
    await mesh.close();
    echo.close();
  });
  mesh.route('greedy', VIP, 90);
  mesh.route('other', VIP, 90);
  const roundTrip = (s: net.Socket) =>
    new Promise<string>((resolve) => {
      s.once('data', (d) => resolve(String(d)));
      s.once('close', () => resolve('closed'));
      s.write('ping');
    });
  const held: net.Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const s = await dialFrom('127.0.10.1', mesh.a);
    s.on('error', () => {});
    t.equal(await roundTrip(s), 'ping', `greedy connection ${i + 1} of 3 served`);
    held.push(s);
  }
  // reset at once: before or just after the client sees its connect complete
  const fourth = await dialFrom('127.0.10.1', mesh.a).then(
    (s) => {
      s.on('error', () => {});
      return roundTrip(s);
    },
    (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? 'closed' : err.message),
  );
  t.equal(fourth, 'closed', 'the fourth is refused');
  const other = await dialFrom('127.0.10.3', mesh.a);
  t.equal(await roundTrip(other), 'ping', 'another pod is served');
  other.destroy();
  t.equal(await metricValue(mesh.a.registry, 'weft_proxy_connections_refused_total', { direction: 'outbound', reason: 'source_limit' }), 1, 'counted');
  held.shift()!.destroy();
  await new Promise((r) => setTimeout(r, 50));
  const again = await dialFrom('127.0.10.1', mesh.a);
  t.equal(await roundTrip(again), 'ping', 'a slot freed by a close is usable again');
  again.destroy();
  for (const s of held) s.destroy();
});
