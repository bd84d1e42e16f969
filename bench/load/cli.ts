// Entry point of the load generators, run INSIDE a pod (cgroup + netns) by the bench runner:
//   node dist/bench/load/cli.js open-loop|tcp-rr|churn '<json options>'   → one JSON result on stdout
//   node dist/bench/load/cli.js echo-server <port>                         → TCP echo upstream
// Options are the JSON form of the corresponding *Options interface.
import net from 'node:net';

import { churn, tcpRoundTrips, type ChurnOptions, type TcpRoundTripOptions } from './closed-loop.js';
import { openLoop, type OpenLoopOptions } from './open-loop.js';

function echoServer(port: number): void {
  const srv = net.createServer({ noDelay: true }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  srv.listen(port, '0.0.0.0', () => process.stdout.write(JSON.stringify({ listening: port }) + '\n'));
}

async function main(): Promise<void> {
  const [mode, arg = '{}'] = process.argv.slice(2);
  switch (mode) {
    case 'open-loop':
      process.stdout.write(JSON.stringify(await openLoop(JSON.parse(arg) as OpenLoopOptions)) + '\n');
      return;
    case 'tcp-rr':
      process.stdout.write(JSON.stringify(await tcpRoundTrips(JSON.parse(arg) as TcpRoundTripOptions)) + '\n');
      return;
    case 'churn':
      process.stdout.write(JSON.stringify(await churn(JSON.parse(arg) as ChurnOptions)) + '\n');
      return;
    case 'echo-server':
      echoServer(Number(arg));
      return;
    default:
      process.stderr.write('usage: cli.js open-loop|tcp-rr|churn <json> | echo-server <port>\n');
      process.exitCode = 2;
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`load generator failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
