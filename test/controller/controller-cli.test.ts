// `weft controller`, `weft apply` and `weft delete` as an operator runs them.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

import { weftBin } from '../helpers/paths.js';
import { FIXTURES, TOKENS, freePort, tempDir } from './harness.js';

t.test('weft controller --help documents the flags', async (t) => {
  const r = spawnSync(process.execPath, [weftBin, 'controller', '--help'], { encoding: 'utf8' });
  t.equal(r.status, 0);
  for (const f of ['--config-dir', '--state-dir', '--grpc-listen', '--web-listen', '--bootstrap-tokens', '--trust-domain', '--kubernetes', '--cert-ttl']) t.match(r.stdout, f);
  const bad = spawnSync(process.execPath, [weftBin, 'controller', '--cert-ttl', 'soon', '--bootstrap-tokens', '/nonexistent'], { encoding: 'utf8' });
  t.equal(bad.status, 1);
  t.match(bad.stderr, /WEFT_ERR_CONFIG/);
});

t.test('weft apply / delete against a running weft controller', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'tokens.json'), JSON.stringify(TOKENS));
  const grpcPort = await freePort();
  const webPort = await freePort();
  const child = spawn(process.execPath, [weftBin, 'controller', '--state-dir', join(dir, 'state'), '--bootstrap-tokens', join(dir, 'tokens.json'), '--grpc-listen', `127.0.0.1:${grpcPort}`, '--web-listen', `127.0.0.1:${webPort}`, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const deadline = Date.now() + 15_000;
  while (!out.includes('weft controller: gRPC on') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  t.match(out, `gRPC on 127.0.0.1:${grpcPort}, web on 127.0.0.1:${webPort}`, err);
  t.ok(existsSync(join(dir, 'state', 'ca', 'root-cert.pem')), 'root persisted in the state dir');

  const ctl = ['--controller', `http://127.0.0.1:${webPort}`];
  const run = (args: string[]) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [weftBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  let r = await run(['apply', '-f', FIXTURES, ...ctl]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, 'Pod shop/web-1 applied');
  t.match(r.stdout, 'Service shop/web applied');

  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'apiVersion: v1\nkind: Service\nmetadata: { name: x, namespace: shop }\nspec: { ports: [{ port: "eighty" }] }\n');
  r = await run(['apply', '-f', bad, ...ctl]);
  t.equal(r.status, 1);
  t.match(r.stderr, /WEFT_ERR_CONFIG: Service shop\/x, field spec\.ports\[0\]\.port: must be an integer/);
  t.match(r.stderr, 'nothing was applied');

  writeFileSync(bad, 'apiVersion: v1\nkind: Service\nmetadata: { name: x\n');
  r = await run(['apply', '-f', bad, ...ctl]);
  t.equal(r.status, 1);
  t.match(r.stderr, new RegExp(`${bad.replace(/[/.]/g, '\\$&')}, document 1.*not valid YAML`));

  r = await run(['delete', '-f', join(FIXTURES, 'mesh.yaml'), ...ctl]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, 'Pod shop/web-1 deleted');

  r = await run(['apply', '-f', FIXTURES, '--controller', 'http://127.0.0.1:1']);
  t.equal(r.status, 1);
  t.match(r.stderr, /cannot reach the controller/);
});
