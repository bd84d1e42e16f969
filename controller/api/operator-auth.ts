// Who may use the operator API's sensitive parts (writes; taps, which show live requests): a caller with the
// operator token when the controller has one (--operator-token-file), else only loopback (the sandbox's
// forward and `kubectl port-forward` both arrive on the controller's loopback).
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

function isLoopback(addr: string | undefined): boolean {
  return !!addr && (addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.'));
}

export function operatorAuthorizer(operatorToken: string | undefined): (req: IncomingMessage) => boolean {
  const token = operatorToken ? Buffer.from(operatorToken) : undefined;
  return (req) => {
    if (!token) return isLoopback(req.socket.remoteAddress);
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const got = Buffer.from(m?.[1] ?? '');
    return got.length === token.length && timingSafeEqual(got, token);
  };
}
