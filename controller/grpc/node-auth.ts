// Who is calling: every agent call carries a bearer token and the node name it claims. In the sandbox the
// token is the node's bootstrap token from a file the sandbox writes ({"node-1": "..."}); on Kubernetes it
// is the agent's projected ServiceAccount token, checked with a TokenReview and bound to the node the
// agent's pod runs on (the API server puts the bound pod's node in the token's extra info).
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

import type { AuthenticationV1Api } from '@kubernetes/client-node';

import { WeftConfigError, WeftError } from '../../common/errors.js';

export class NodeAuthError extends WeftError {
  constructor(message: string) {
    super('WEFT_ERR_NODE_AUTH', message);
  }
}

export interface NodeAuthenticator {
  /** resolves when `token` proves the caller is node `node`; throws NodeAuthError otherwise */
  authenticate(node: string, token: string): Promise<void>;
}

export class BootstrapTokenAuthenticator implements NodeAuthenticator {
  private readonly tokens: Map<string, Buffer>;

  constructor(tokens: Record<string, string>) {
    this.tokens = new Map(Object.entries(tokens).map(([n, t]) => [n, Buffer.from(t)]));
  }

  /** `{ "node-1": "token", ... }` */
  static fromFile(path: string): BootstrapTokenAuthenticator {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new WeftConfigError(`bootstrap token file ${path}`, `cannot be read as JSON (${(e as Error).message}); write {"<node>": "<token>", ...}`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new WeftConfigError(`bootstrap token file ${path}`, 'must be a JSON object {"<node>": "<token>"}');
    for (const [n, t] of Object.entries(parsed)) {
      if (typeof t !== 'string' || t.length < 16) throw new WeftConfigError(`bootstrap token file ${path}, field ${n}`, 'must be a string of at least 16 characters');
    }
    return new BootstrapTokenAuthenticator(parsed as Record<string, string>);
  }

  async authenticate(node: string, token: string): Promise<void> {
    const want = this.tokens.get(node);
    const got = Buffer.from(token);
    if (!want || want.length !== got.length || !timingSafeEqual(want, got)) {
      throw new NodeAuthError(`node "${node}" presented no valid bootstrap token; check the agent's --token-file matches the controller's --bootstrap-tokens entry for this node`);
    }
  }
}

export interface TokenReviewOptions {
  /** audience the agent's projected token is minted for */
  audience: string;
  /** "system:serviceaccount:<ns>:<sa>" of the agent DaemonSet */
  agentUser: string;
  /** how long a successful review is trusted; default 60 s */
  cacheMs?: number;
}

const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

export class TokenReviewAuthenticator implements NodeAuthenticator {
  private readonly cache = new Map<string, number>();

  constructor(
    private readonly api: Pick<AuthenticationV1Api, 'createTokenReview'>,
    private readonly opts: TokenReviewOptions,
  ) {}

  async authenticate(node: string, token: string): Promise<void> {
    const key = `${node}\n${token}`;
    const until = this.cache.get(key);
    if (until !== undefined && until > Date.now()) return;
    let review;
    try {
      review = await this.api.createTokenReview({
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [this.opts.audience] } },
      });
    } catch (e) {
      throw new NodeAuthError(`TokenReview for node "${node}" failed: ${(e as Error).message}; the controller needs RBAC create on tokenreviews`);
    }
    const st = review.status;
    if (!st?.authenticated) throw new NodeAuthError(`node "${node}": the token was not accepted by the API server (${st?.error ?? 'not authenticated'})`);
    if (st.audiences && !st.audiences.includes(this.opts.audience)) throw new NodeAuthError(`node "${node}": the token is not for audience "${this.opts.audience}"`);
    const user = st.user?.username;
    if (user !== this.opts.agentUser) throw new NodeAuthError(`node "${node}": the token belongs to "${user ?? 'nobody'}", not the agent's service account ${this.opts.agentUser}`);
    const boundNode = st.user?.extra?.[NODE_NAME_EXTRA]?.[0];
    if (boundNode !== node) {
      throw new NodeAuthError(`the token is bound to node "${boundNode ?? 'none'}" but the caller claims node "${node}"; agents must use a projected token of their own pod`);
    }
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, Date.now() + (this.opts.cacheMs ?? 60_000));
  }
}
