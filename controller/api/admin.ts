// The operator's write API, mounted on the controller's HTTP port (15014) next to the web page:
//   POST /api/v1/apply   body: YAML (multi-document)  -> 200 {"applied": ["Pod default/web-1", ...]}
//   POST /api/v1/delete  body: YAML                   -> 200 {"deleted": [...]}
//   POST /api/v1/ca/rotate-root                       -> 200 {"rootCertPem", "trustBundlePem"}: a new root
//        signs from now on; the old one stays in the trust bundle until the leaves it signed have expired
// An apply is all or nothing: every object is validated first and one invalid object refuses the whole
// request (422 with the WEFT_ERR_CONFIG message naming object and field). Callers must present the
// operator token (Authorization: Bearer ...) when one is configured; without one, only loopback may write.
import type { IncomingMessage, ServerResponse } from 'node:http';

import { errorMessage, isWeftError, WeftConfigError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { silentLogger } from '../../common/log.js';
import { parseObjects } from '../sources/yaml-objects.js';
import { operatorAuthorizer } from './operator-auth.js';
import { APPLY_PATH, DELETE_PATH, ROTATE_ROOT_PATH } from './paths.js';
import { describeObject, type ObjectStore } from '../store/object-store.js';
import type { CertificateAuthority } from '../ca/authority.js';

export const APPLY_SOURCE = 'apply';
const MAX_BODY = 32 * 1024 * 1024;

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new WeftConfigError('request body', `is larger than ${MAX_BODY} bytes; apply fewer objects at once`);
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function createAdminHandler(opts: { store: ObjectStore; ca?: CertificateAuthority; operatorToken?: string; logger?: Logger; afterWrite?: () => void }): HttpHandler {
  const log = opts.logger ?? silentLogger;
  const token = opts.operatorToken;
  const authorized = operatorAuthorizer(opts.operatorToken);

  return async (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== APPLY_PATH && path !== DELETE_PATH && !(path === ROTATE_ROOT_PATH && opts.ca)) return false;
    if (req.method !== 'POST') {
      send(res, 405, { error: { code: 'WEFT_ERR_CONFIG', message: `${path} takes POST with a YAML body` } });
      return true;
    }
    if (!authorized(req)) {
      send(res, 401, { error: { code: 'WEFT_ERR_OPERATOR_AUTH', message: token ? 'missing or wrong operator token (Authorization: Bearer <token>)' : 'writes are allowed from loopback only unless the controller has --operator-token-file' } });
      return true;
    }
    try {
      if (path === ROTATE_ROOT_PATH) {
        await opts.ca!.rotateRoot();
        log.info('root rotated by operator request');
        send(res, 200, { rootCertPem: opts.ca!.rootCertPem(), trustBundlePem: opts.ca!.trustBundlePem() });
        return true;
      }
      const objs = parseObjects(await readBody(req), 'request body');
      if (path === APPLY_PATH) {
        // validate everything before touching the store: all or nothing
        const valid = objs.map((o) => opts.store.validate(o));
        for (const o of valid) opts.store.upsert(o, APPLY_SOURCE);
        const applied = valid.map((o) => describeObject(o));
        log.info('applied objects', { count: applied.length });
        opts.afterWrite?.();
        send(res, 200, { applied });
      } else {
        const deleted: string[] = [];
        objs.forEach((o, i) => {
          const md = (o as { metadata?: { name?: unknown; namespace?: unknown } }).metadata;
          if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string' || typeof md?.name !== 'string') {
            throw new WeftConfigError(`request body, object ${i + 1}`, 'needs apiVersion, kind and metadata.name to be deleted');
          }
        });
        for (const o of objs) {
          opts.store.delete({ apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name, ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}) }, APPLY_SOURCE);
          deleted.push(describeObject(o));
        }
        log.info('deleted objects', { count: deleted.length });
        opts.afterWrite?.();
        send(res, 200, { deleted });
      }
    } catch (e) {
      if (isWeftError(e)) send(res, 422, { error: e.toJSON() });
      else {
        log.error('admin API failed', { err: e });
        send(res, 500, { error: { code: 'WEFT_ERR_INTERNAL', message: errorMessage(e) } });
      }
    }
    return true;
  };
}
