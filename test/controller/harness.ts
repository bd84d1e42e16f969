// In-process controller and agent pieces for controller tests: real gRPC over loopback TLS.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { silentLogger } from '../../common/log.js';
import { BootstrapTokenAuthenticator } from '../../controller/grpc/node-auth.js';
import { startController, type ControllerHandle, type ControllerOptions } from '../../controller/main.js';
import { ControllerConnection } from '../../agent/config/controller-connection.js';
import { repoRoot } from '../helpers/paths.js';

export const TOKENS = { 'node-1': 'node-1-token-0123456789abcdef', 'node-2': 'node-2-token-0123456789abcdef' };
export const FIXTURES = join(repoRoot, 'test', 'controller', 'fixtures');

export function tempDir(t: { teardown(fn: () => void): void }, prefix = 'weft-ctl-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface Env {
  root: string;
  stateDir: string;
  configDir: string;
  grpcPort: number;
}

export function makeEnv(t: { teardown(fn: () => void): void }, fixtures: string[] = ['mesh.yaml']): Env & { grpcPortPromise?: never } {
  const root = tempDir(t);
  const configDir = join(root, 'config');
  mkdirSync(configDir);
  for (const f of fixtures) copyFileSync(join(FIXTURES, f), join(configDir, f));
  writeFileSync(join(root, 'tokens.json'), JSON.stringify(TOKENS));
  return { root, stateDir: join(root, 'state'), configDir, grpcPort: 0 };
}

export async function runController(env: Env, extra: Partial<ControllerOptions> = {}): Promise<ControllerHandle> {
  return startController({
    trustDomain: 'cluster.local',
    stateDir: env.stateDir,
    configDir: env.configDir,
    grpcHost: '127.0.0.1',
    grpcPort: env.grpcPort,
    webHost: '127.0.0.1',
    webPort: 0,
    authenticator: new BootstrapTokenAuthenticator(TOKENS),
    debounceMs: 20,
    logger: silentLogger,
    ...extra,
  });
}

export function connectAgent(c: { grpcPort: number; trustBundlePem: string; controllerIdentity: string }, node: keyof typeof TOKENS | string, token?: string): ControllerConnection {
  return new ControllerConnection({
    address: `127.0.0.1:${c.grpcPort}`,
    node,
    token: () => token ?? (TOKENS as Record<string, string>)[node] ?? 'x',
    trustBundlePem: c.trustBundlePem,
    controllerIdentity: c.controllerIdentity,
  });
}

export async function until(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function postYaml(port: number, path: string, yaml: string, token?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body: yaml, headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, body: await res.json() };
}
