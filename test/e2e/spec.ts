// The sandbox the end-to-end tests run on, as Kubernetes YAML. Namespace e2e is in the mesh:
//   near (node-1) and far (node-2): the server fixture, each behind a Service of the same name whose ports
//     cover every protocol (some with appProtocol, some left to detection);
//   client (node-1): where the checks run from; prober (node-1): only the captured request, under its own
//     service account so its tunnel handshake is a fresh one.
// Namespace outside is not: outsider (node-1) sends the capture's plaintext control and plays the proxy
// impostor.
import 'reflect-metadata';
import { webcrypto, X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as x509 from '@peculiar/x509';
import { PORTS } from './fixtures/protocol.js';

const here = dirname(fileURLToPath(import.meta.url));
export const FIXTURES = {
  server: join(here, 'fixtures', 'server.js'),
  client: join(here, 'fixtures', 'client.js'),
  rogue: join(here, 'fixtures', 'rogue-tunnel.js'),
};
export const NS = 'e2e';
const NODE = process.execPath;

export interface AppTls {
  cert: string;
  key: string;
  fingerprint: string;
}

/** The server pods' own TLS certificate: self-signed, nothing to do with the mesh's CA. */
async function selfSigned(): Promise<AppTls> {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const c = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=e2e-app-tls',
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 24 * 3600_000),
    signingAlgorithm: alg,
    keys: keys as never,
  });
  const pem = c.toString('pem') + '\n';
  const key = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
  return { cert: pem, key: `-----BEGIN PRIVATE KEY-----\n${key.replace(/(.{64})/g, '$1\n')}\n-----END PRIVATE KEY-----\n`, fingerprint: new X509Certificate(pem).fingerprint256 };
}

function serverPod(name: string, node: string, dir: string): string {
  return `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${NS}, labels: { app: ${name} } }
spec:
  nodeName: ${node}
  serviceAccountName: server
  containers:
    - name: server
      command: [${NODE}, ${FIXTURES.server}]
      env:
        - { name: POD, value: ${name} }
        - { name: TLS_CERT, value: ${join(dir, 'tls.crt')} }
        - { name: TLS_KEY, value: ${join(dir, 'tls.key')} }
---
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ${NS} }
spec:
  selector: { app: ${name} }
  ports:
    - { name: http, port: 80, targetPort: ${PORTS.http}, appProtocol: http }
    - { name: ws, port: 8080, targetPort: ${PORTS.http} }
    - { name: h2, port: 81, targetPort: ${PORTS.h2c} }
    - { name: grpc, port: 50051, targetPort: ${PORTS.grpc}, appProtocol: grpc }
    - { name: tcp, port: 9000, targetPort: ${PORTS.tcpSink} }
    - { name: tls, port: 443, targetPort: ${PORTS.tls} }
    - { name: banner, port: 25, targetPort: ${PORTS.banner} }
    - { name: banner-declared, port: 26, targetPort: ${PORTS.banner}, appProtocol: tcp }
`;
}

function sleeperPod(ns: string, name: string, sa: string): string {
  return `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${ns}, labels: { app: ${name} } }
spec:
  nodeName: node-1
  serviceAccountName: ${sa}
  containers: [{ name: main, command: [sleep, infinity] }]
`;
}

/** Writes the app's TLS files into `dir` and returns the spec and the certificate's fingerprint. */
export async function writeSpec(dir: string): Promise<{ spec: string; appTls: AppTls }> {
  const appTls = await selfSigned();
  writeFileSync(join(dir, 'tls.crt'), appTls.cert);
  writeFileSync(join(dir, 'tls.key'), appTls.key);
  const spec = [
    `apiVersion: v1
kind: Namespace
metadata: { name: ${NS}, labels: { weft.io/mesh: enabled } }
---
apiVersion: v1
kind: Namespace
metadata: { name: outside }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: server, namespace: ${NS} }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: client, namespace: ${NS} }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: prober, namespace: ${NS} }
`,
    serverPod('near', 'node-1', dir),
    serverPod('far', 'node-2', dir),
    sleeperPod(NS, 'client', 'client'),
    sleeperPod(NS, 'prober', 'prober'),
    sleeperPod('outside', 'outsider', 'default'),
  ].join('---\n');
  return { spec, appTls };
}
