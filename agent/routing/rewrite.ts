// RequestRedirect and URLRewrite (Gateway API HTTPRoute filters): the new path for ReplaceFullPath and
// ReplacePrefixMatch (element-wise, as the spec's table shows: prefix "/foo" replaced by "/xyz" turns
// "/foo/bar" into "/xyz/bar" and "/foo" into "/xyz"; replaced by "/", "/foo/bar" becomes "/bar"), and the
// Location of a redirect (scheme, host, port, path; the query is kept; the port is left out when it is the
// scheme's well-known one).
import type { PathModifier, RouteFilter } from '../../common/policy/route.js';

const trimSlash = (s: string) => (s.endsWith('/') ? s.slice(0, -1) : s);

/** `path` (no query) after the modifier; `prefix` is the PathPrefix the rule matched (ReplacePrefixMatch). */
export function modifyPath(path: string, mod: PathModifier, prefix: string | undefined): string {
  if (mod.type === 'ReplaceFullPath') return mod.value;
  const p = trimSlash(prefix ?? '/');
  const rest = path.slice(p.length);
  const out = trimSlash(mod.value) + rest;
  return out === '' ? '/' : out.startsWith('/') ? out : `/${out}`;
}

/** "host:port" / "[v6]:port" / "host" → host and optional port. */
export function splitAuthority(authority: string): { host: string; port: number | undefined } {
  const m = /^(\[[^\]]*\]|[^:]*)(?::([0-9]+))?$/.exec(authority);
  if (!m) return { host: authority, port: undefined };
  return { host: m[1]!, port: m[2] ? Number(m[2]) : undefined };
}

const WELL_KNOWN: Record<string, number> = { http: 80, https: 443 };

export interface RedirectInput {
  scheme: 'http' | 'https';
  authority: string;
  /** path without query */
  path: string;
  /** the query string with its "?" or "" */
  search: string;
  /** the port the client called (the Service port), when the authority carries none */
  port: number;
}

export function redirectLocation(f: Extract<RouteFilter, { type: 'RequestRedirect' }>, req: RedirectInput, prefix: string | undefined): string {
  const scheme = f.scheme ?? req.scheme;
  const { host, port: hostPort } = splitAuthority(req.authority);
  const hostname = f.hostname ?? host;
  // Spec: an explicit port wins; else the scheme's well-known port when the scheme changes; else the request's.
  const port = f.port ?? (f.scheme ? WELL_KNOWN[f.scheme]! : (hostPort ?? req.port));
  const path = f.path ? modifyPath(req.path, f.path, prefix) : req.path;
  const showPort = port !== WELL_KNOWN[scheme];
  return `${scheme}://${hostname}${showPort ? `:${port}` : ''}${path}${req.search}`;
}
