// Demo HTTP service for the sandbox: answers every request with who served it. Plain Node, no framework.
// PORT (default 8080), NAME (a label for the reply, default the hostname = the pod's name).
import { createServer } from 'node:http';
import { hostname } from 'node:os';

const port = Number(process.env.PORT ?? 8080);
const name = process.env.NAME ?? 'http-server';
let served = 0;

createServer((req, res) => {
  served++;
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ service: name, pod: hostname(), method: req.method, path: req.url, bytes: body.length, served }) + '\n');
  });
}).listen(port, () => console.log(`${name}: HTTP on :${port} (pod ${hostname()})`));
