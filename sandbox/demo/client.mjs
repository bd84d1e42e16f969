// Demo traffic generator for the sandbox: every INTERVAL_MS (default 1000) one HTTP request to each URL in
// HTTP_URLS, one gRPC call to GRPC_TARGET, one line through the TCP echo at TCP_TARGET (all optional,
// comma-separated or host:port), by service name. One log line per round.
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const interval = Number(process.env.INTERVAL_MS ?? 1000);
const httpUrls = (process.env.HTTP_URLS ?? '').split(',').filter(Boolean);
const grpcTarget = process.env.GRPC_TARGET;
const tcpTarget = process.env.TCP_TARGET;

let greeter;
if (grpcTarget) {
  const grpc = (await import('@grpc/grpc-js')).default;
  const protoLoader = (await import('@grpc/proto-loader')).default;
  const def = protoLoader.loadSync(join(dirname(fileURLToPath(import.meta.url)), 'greeter.proto'));
  const demo = grpc.loadPackageDefinition(def).demo;
  greeter = new demo.Greeter(grpcTarget, grpc.credentials.createInsecure());
}

const withTimeout = (p, ms) => Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), ms))]);

async function http(url) {
  const res = await withTimeout(fetch(url), 3000);
  const body = await res.json();
  return `${res.status} from ${body.pod}`;
}

function grpcCall() {
  return withTimeout(new Promise((resolve, reject) => greeter.SayHello({ name: 'client' }, { deadline: Date.now() + 3000 }, (err, r) => (err ? reject(err) : resolve(`ok from ${r.pod}`)))), 3500);
}

function tcp() {
  const [host, port] = tcpTarget.split(':');
  return withTimeout(
    new Promise((resolve, reject) => {
      const s = connect(Number(port), host, () => s.write('ping\n'));
      s.setEncoding('utf8');
      s.on('data', (d) => {
        resolve(d.trim());
        s.end();
      });
      s.on('error', reject);
    }),
    3000,
  );
}

const show = (p) => p.then((v) => v, (e) => `ERROR ${e.code ?? ''} ${e.message}`.trim());

for (;;) {
  const parts = [];
  for (const u of httpUrls) parts.push(`http ${u} -> ${await show(http(u))}`);
  if (greeter) parts.push(`grpc ${grpcTarget} -> ${await show(grpcCall())}`);
  if (tcpTarget) parts.push(`tcp ${tcpTarget} -> ${await show(tcp())}`);
  console.log(`${new Date().toISOString()} ${parts.join(' | ')}`);
  await new Promise((r) => setTimeout(r, interval));
}
