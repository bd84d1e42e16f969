// Demo plain-TCP service for the sandbox: echoes each line back, prefixed with the pod's name. PORT (default 7000).
import { createServer } from 'node:net';
import { hostname } from 'node:os';

const port = Number(process.env.PORT ?? 7000);
createServer((sock) => {
  sock.setEncoding('utf8');
  let buf = '';
  sock.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      sock.write(`${hostname()}: ${buf.slice(0, i)}\n`);
      buf = buf.slice(i + 1);
    }
  });
  sock.on('error', () => {});
}).listen(port, () => console.log(`echo: TCP on :${port} (pod ${hostname()})`));
