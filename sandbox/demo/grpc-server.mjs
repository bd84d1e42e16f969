// Demo gRPC service for the sandbox (demo.Greeter/SayHello), on PORT (default 50051), plaintext h2c:
// the mesh adds mTLS between nodes, the app does not have to.
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const port = Number(process.env.PORT ?? 50051);
const def = protoLoader.loadSync(join(dirname(fileURLToPath(import.meta.url)), 'greeter.proto'));
const demo = grpc.loadPackageDefinition(def).demo;

const server = new grpc.Server();
server.addService(demo.Greeter.service, {
  SayHello: (call, cb) => cb(null, { message: `hello, ${call.request.name}`, pod: hostname() }),
});
server.bindAsync(`0.0.0.0:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    console.error(`greeter: cannot listen on :${port}: ${err.message}`);
    process.exit(1);
  }
  console.log(`greeter: gRPC on :${port} (pod ${hostname()})`);
});
