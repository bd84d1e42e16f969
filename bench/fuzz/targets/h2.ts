// HTTP/2 and CONNECT handling on the tunnel: the real InboundTunnel of a real node proxy (its node:http2
// server with the proxy's own settings, its session checks and its CONNECT stream handling), fed frames
// from a raw loopback socket. TLS is left out so a million connections fit in the time: each raw socket is
// handed to the tunnel's server as its TLS layer would hand over a verified one (peer certificate with the
// source's SPIFFE ID, SNI for the destination's identity), so everything after the handshake runs as in
// production. Oracles: no uncaught exception; once the client has sent its frames and half-closed, the
// proxy closes the connection within the deadline (nothing is held by a peer that went away).
import fc from 'fast-check';
import net from 'node:net';
import { sniFor } from '../../../agent/proxy/spiffe.js';
import { startMesh, type Mesh } from '../../../test/proxy/fixtures/mesh.js';
import { applyOps, mutations } from '../mutate.js';
import { OracleViolation, withDeadline, type FuzzContext, type FuzzTarget } from '../target.js';
import { clientFrame, connectHeaders, PREFACE, settings } from './h2-frames.js';

/** connections opened side by side per property run */
const BATCH = 8;
const DEADLINE_MS = 10_000;

type Input = Buffer[];

function listen(server: net.Server, host: string): Promise<number> {
  return new Promise((resolve) => server.listen(0, host, () => resolve((server.address() as net.AddressInfo).port)));
}

/** Sends the bytes, half-closes, and resolves when the proxy has closed the connection. */
function converse(port: number, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    s.on('error', () => {}); // a reset is a way of closing
    s.on('data', () => {});
    s.on('close', () => resolve());
    s.on('connect', () => s.end(bytes));
    s.setTimeout(DEADLINE_MS, () => {
      s.destroy();
      reject(new OracleViolation('hang', `the tunnel kept the connection open ${DEADLINE_MS} ms after the client half-closed`));
    });
  });
}

export const h2Target: FuzzTarget = {
  name: 'h2',
  surface: 'agent/proxy/inbound.ts (InboundTunnel: node:http2 server as the proxy configures it, session checks, CONNECT streams) from raw frames',
  async setup(): Promise<FuzzContext<unknown>> {
    const pod = net.createServer((s) => {
      s.on('error', () => {});
      s.end('hello from db');
    });
    const podPort = await listen(pod, '127.0.20.2');
    const mesh: Mesh = await startMesh(
      [
        { name: 'sleep', node: 'node-a', ip: '127.0.10.1' },
        { name: 'db', node: 'node-b', ip: '127.0.20.2' },
      ],
      [],
    );
    const tunnel = mesh.b.proxy.servers()[1]!;
    const peer = mesh.spiffe('sleep');
    const servername = sniFor(mesh.spiffe('db'));
    // the raw socket, dressed as the TLS socket a verified handshake with node-a's proxy would give
    const front = net.createServer((sock) => {
      Object.assign(sock, { authorized: true, authorizationError: null, servername, alpnProtocol: 'h2', getPeerCertificate: () => ({ subjectaltname: `URI:${peer}` }) });
      tunnel.emit('secureConnection', sock);
    });
    const port = await listen(front, '127.0.0.1');
    const authority = `127.0.20.2:${podPort}`;
    // Mostly a well-formed start (preface, SETTINGS, a CONNECT's HEADERS) so most connections reach the
    // tunnel's stream handling rather than dying in the frame layer; then anything, and mutation sometimes.
    const conversation: fc.Arbitrary<Buffer> = fc
      .record({
        preface: fc.constantFrom(true, true, true, true, true, true, true, true, true, false),
        connect: fc.option(connectHeaders(authority), { freq: 5 }),
        frames: fc.array(clientFrame(authority), { minLength: 0, maxLength: 4 }),
        ops: fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: mutations(3) }),
      })
      .map(({ preface, connect, frames, ops }) => {
        const b = Buffer.concat([...(preface ? [PREFACE, settings([])] : []), ...(connect ? [connect] : []), ...frames]);
        return applyOps(b, ops, [b]);
      });
    return {
      arbitrary: fc.array(conversation, { minLength: BATCH, maxLength: BATCH }) as fc.Arbitrary<unknown>,
      perRun: () => BATCH,
      shrink: false,
      async check(raw) {
        await withDeadline(Promise.all((raw as Input).map((b) => converse(port, b))), DEADLINE_MS * 2, 'a batch of tunnel connections');
      },
      show: (raw) => JSON.stringify((raw as Input).map((b) => b.toString('base64'))),
      async close() {
        front.close();
        pod.close();
        await mesh.close();
      },
    };
  },
};
