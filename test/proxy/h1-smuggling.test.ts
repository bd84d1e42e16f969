// Request smuggling is refused by construction: llhttp in strict mode plus the codec's own framing rules.
// Each known vector (CL.TE, TE.CL, TE.TE obfuscations, duplicate or malformed Content-Length, obs-fold, bare
// LF, bad chunk sizes, Transfer-Encoding in HTTP/1.0) is sent as raw bytes from a pod; the client gets 400
// and a closed connection, and the upstream pod receives not one byte. A valid pipelined pair shows the
// control case: the upstream sees exactly the two requests the client sent, answered in order.
import t, { type Test } from 'tap';
import http from 'node:http';
import net from 'node:net';
import { listen, startMesh, type Mesh, type PodSpec } from './fixtures/mesh.js';

const PODS: PodSpec[] = [
  { name: 'sleep', node: 'node-a', ip: '127.0.10.1' },
  { name: 'web-a', node: 'node-a', ip: '127.0.10.2', sa: 'web' },
  { name: 'web-b', node: 'node-b', ip: '127.0.20.2', sa: 'web' },
];
const VIP_LOCAL = '127.0.97.30';
const VIP_REMOTE = '127.0.97.31';

interface Upstream {
  bytes: number;
  urls: string[];
}

async function setup(t: Test): Promise<{ mesh: Mesh; seen: Upstream }> {
  const seen: Upstream = { bytes: 0, urls: [] };
  const mk = () => {
    const s = http.createServer((req, res) => {
      req.resume();
      // Counted when complete: a request whose body framing was refused never completes at the pod.
      req.on('end', () => {
        seen.urls.push(`${req.method} ${req.url}`);
        res.end(`ok ${req.url}`);
      });
    });
    s.on('connection', (sock: net.Socket) => sock.on('data', (d: Buffer) => (seen.bytes += d.length)));
    return s;
  };
  const a = mk();
  const b = mk();
  const port = await listen(a, '127.0.10.2');
  await new Promise<void>((r) => b.listen(port, '127.0.20.2', r));
  const mesh = await startMesh(PODS, [
    { name: 'web-local', vip: VIP_LOCAL, port: 80, targetPort: port, pods: ['web-a'] },
    { name: 'web-remote', vip: VIP_REMOTE, port: 80, targetPort: port, pods: ['web-b'] },
  ]);
  t.teardown(async () => {
    await mesh.close();
    a.close();
    b.close();
  });
  return { mesh, seen };
}

/** Sends raw bytes as the sleep pod; resolves with everything received until the proxy closes. */
function raw(mesh: Mesh, bytes: string): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect({ host: mesh.a.outbound.host, port: mesh.a.outbound.port, localAddress: '127.0.10.1' });
    let data = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ data, closed: false });
    }, 3000);
    s.on('data', (d) => (data += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data, closed: true });
    });
    s.write(Buffer.from(bytes, 'latin1'));
  });
}

const VECTORS: Array<[string, string]> = [
  ['CL.TE', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG'],
  ['TE.CL', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\nContent-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n'],
  ['TE.TE: second TE field', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n'],
  ['TE.TE: chunked first, then identity', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ['TE.TE: space before colon', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n'],
  ['TE.TE: xchunked', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n'],
  ['TE.TE: chunked, identity list', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n'],
  ['TE.TE: gzip, chunked (only "chunked" is forwarded)', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'],
  ['TE.TE: obs-fold', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n'],
  ['TE.TE: vertical tab', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n'],
  ['duplicate Content-Length, differing', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde'],
  ['duplicate Content-Length, equal', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc'],
  ['Content-Length list', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc'],
  ['Content-Length with sign', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc'],
  ['obs-fold in a header', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n'],
  ['bare LF line ends', 'GET / HTTP/1.1\nHost: x\n\n'],
  ['bare LF inside the head', 'GET / HTTP/1.1\r\nHost: x\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ['bad chunk size', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
  ['chunk size overflow', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nabc\r\n0\r\n\r\n'],
  ['Transfer-Encoding in HTTP/1.0', 'POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ['NUL in a header value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n'],
];

const BODY_LEVEL = new Set(['bad chunk size', 'chunk size overflow']);

for (const [where, vip] of [
  ['same node', VIP_LOCAL],
  ['cross node', VIP_REMOTE],
] as const) {
  t.test(`smuggling vectors are refused with 400 and nothing reaches the pod (${where})`, async (t) => {
    const { mesh, seen } = await setup(t);
    mesh.route('sleep', vip, 80);
    for (const [name, bytes] of VECTORS) {
      const before = seen.bytes;
      const r = await raw(mesh, bytes);
      t.match(r.data, /^HTTP\/1\.1 400 Bad Request\r\n/, `${name}: 400`);
      t.ok(r.closed, `${name}: connection closed`);
      if (BODY_LEVEL.has(name)) {
        // The head was valid and went on; the body's bad framing never did: the pod saw no complete request.
        t.same(seen.urls, [], `${name}: no complete request reached the pod`);
        // Its head may still be on its way through the tunnel: let it land before counting bytes again.
        await new Promise((r) => setTimeout(r, 300));
      } else {
        t.equal(seen.bytes, before, `${name}: the pod received nothing`);
      }
    }
    t.same(seen.urls, []);
  });

  t.test(`pipelined requests: the pod sees exactly the requests sent, answered in order (${where})`, async (t) => {
    const { mesh, seen } = await setup(t);
    mesh.route('sleep', vip, 80);
    const r = await raw(mesh, 'GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    t.same(seen.urls, ['GET /a', 'POST /b', 'GET /c']);
    const bodies = [...r.data.matchAll(/ok (\/\w)/g)].map((m) => m[1]);
    t.same(bodies, ['/a', '/b', '/c'], 'responses in request order');
    t.ok(r.closed, 'Connection: close honoured after the last response');
  });
}
