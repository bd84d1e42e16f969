// Node authentication: bootstrap tokens (sandbox) and TokenReview of projected ServiceAccount tokens bound
// to the node (Kubernetes), the latter through the real client library against a fake API server.
import t from 'tap';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { AuthenticationV1Api, KubeConfig } from '@kubernetes/client-node';

import { BootstrapTokenAuthenticator, TokenReviewAuthenticator } from '../../controller/grpc/node-auth.js';
import { tempDir } from './harness.js';

t.test('bootstrap tokens', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'tokens.json');
  writeFileSync(file, JSON.stringify({ 'node-1': 'a'.repeat(32), 'node-2': 'b'.repeat(32) }));
  const auth = BootstrapTokenAuthenticator.fromFile(file);
  await auth.authenticate('node-1', 'a'.repeat(32));
  await t.rejects(auth.authenticate('node-1', 'b'.repeat(32)), { code: 'WEFT_ERR_NODE_AUTH' }, "another node's token");
  await t.rejects(auth.authenticate('node-3', 'a'.repeat(32)), { code: 'WEFT_ERR_NODE_AUTH' }, 'unknown node');
  writeFileSync(file, JSON.stringify({ 'node-1': 'short' }));
  t.throws(() => BootstrapTokenAuthenticator.fromFile(file), { code: 'WEFT_ERR_CONFIG', message: /node-1.*at least 16/ });
  writeFileSync(file, 'not json');
  t.throws(() => BootstrapTokenAuthenticator.fromFile(file), { code: 'WEFT_ERR_CONFIG' });
});

t.test('TokenReview: token accepted only for the agent service account, the audience and the bound node', async (t) => {
  // token -> what the API server would say about it
  const reviews: Record<string, { authenticated: boolean; user?: { username: string; extra?: Record<string, string[]> }; audiences?: string[]; error?: string }> = {
    good: { authenticated: true, audiences: ['weft-controller'], user: { username: 'system:serviceaccount:weft-system:weft-agent', extra: { 'authentication.kubernetes.io/node-name': ['node-1'] } } },
    otherSa: { authenticated: true, audiences: ['weft-controller'], user: { username: 'system:serviceaccount:default:default', extra: { 'authentication.kubernetes.io/node-name': ['node-1'] } } },
    unbound: { authenticated: true, audiences: ['weft-controller'], user: { username: 'system:serviceaccount:weft-system:weft-agent' } },
    expired: { authenticated: false, error: 'token has expired' },
  };
  const seen: { token: string; audiences: string[] }[] = [];
  const api = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/apis/authentication.k8s.io/v1/tokenreviews') {
        res.writeHead(404).end();
        return;
      }
      const review = JSON.parse(body) as { spec: { token: string; audiences: string[] } };
      seen.push(review.spec);
      const status = reviews[review.spec.token] ?? { authenticated: false, error: 'unknown token' };
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: review.spec, status }));
    });
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  t.teardown(() => api.close());
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: `http://127.0.0.1:${(api.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'ctl', token: 'controller-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'ctl' }],
    currentContext: 'fake',
  });
  const auth = new TokenReviewAuthenticator(kc.makeApiClient(AuthenticationV1Api), { audience: 'weft-controller', agentUser: 'system:serviceaccount:weft-system:weft-agent' });

  await auth.authenticate('node-1', 'good');
  t.same(seen[0], { token: 'good', audiences: ['weft-controller'] }, 'the review asks for our audience');
  await auth.authenticate('node-1', 'good');
  t.equal(seen.length, 1, 'a recent success is cached');
  await t.rejects(auth.authenticate('node-2', 'good'), { code: 'WEFT_ERR_NODE_AUTH', message: /bound to node "node-1" but the caller claims node "node-2"/ });
  await t.rejects(auth.authenticate('node-1', 'otherSa'), { code: 'WEFT_ERR_NODE_AUTH', message: /system:serviceaccount:default:default/ });
  await t.rejects(auth.authenticate('node-1', 'unbound'), { code: 'WEFT_ERR_NODE_AUTH', message: /bound to node "none"/ });
  await t.rejects(auth.authenticate('node-1', 'expired'), { code: 'WEFT_ERR_NODE_AUTH', message: /token has expired/ });
});
