// Gateway API request matching (HTTPRouteMatch / GRPCRouteMatch compiled by the controller): path Exact,
// PathPrefix element-wise ("/v2" matches "/v2" and "/v2/x", never "/v2example"; a trailing "/" in the
// prefix is ignored), RegularExpression (the whole path, as Envoy's safe_regex does); headers Exact or
// RegularExpression (whole value), names case-insensitive; query parameters the same (the first value of
// a repeated name, names case-sensitive); method. All conditions of a match are ANDed.
import type { CompiledMatch, StringMatch } from '../../common/policy/route.js';

/** What matching reads from a request; the path without its query, the query parsed lazily. */
export interface MatchInput {
  method: string;
  /** path without the query string */
  path: string;
  /** the raw query string without "?" ("" when none) */
  query: string;
  /** a header by lower-case name; repeated fields joined with ", " */
  header(lowerName: string): string | undefined;
}

export interface Matcher {
  test(req: MatchInput): boolean;
  /** PathPrefix only: the prefix as matched (for URLRewrite/RequestRedirect ReplacePrefixMatch) */
  readonly prefix: string | undefined;
}

const whole = (re: string) => new RegExp(`^(?:${re})$`);

function stringTest(m: StringMatch): (v: string | undefined) => boolean {
  if (m.type === 'Exact') {
    const want = m.value;
    return (v) => v === want;
  }
  const re = whole(m.value);
  return (v) => v !== undefined && re.test(v);
}

/** First value of a query parameter, or undefined (percent-decoded, "+" as space, as URLSearchParams does). */
export function queryParam(query: string, name: string): string | undefined {
  if (query === '') return undefined;
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    if (decode(k) === name) return eq < 0 ? '' : decode(part.slice(eq + 1));
  }
  return undefined;
}

function decode(s: string): string {
  if (!s.includes('%') && !s.includes('+')) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/** PathPrefix, element-wise: the prefix without its trailing "/" must be the path or be followed by "/". */
export function prefixMatches(prefix: string, path: string): boolean {
  if (prefix === '/' || prefix === '') return true;
  const p = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  if (!path.startsWith(p)) return false;
  return path.length === p.length || path.charCodeAt(p.length) === 47 /* "/" */;
}

export function compileMatch(m: CompiledMatch): Matcher {
  const tests: ((req: MatchInput) => boolean)[] = [];
  const pv = m.path.value;
  if (m.path.type === 'Exact') tests.push((r) => r.path === pv);
  else if (m.path.type === 'PathPrefix') {
    if (pv !== '/') tests.push((r) => prefixMatches(pv, r.path));
  } else {
    const re = whole(pv);
    tests.push((r) => re.test(r.path));
  }
  if (m.method) {
    const method = m.method;
    tests.push((r) => r.method === method);
  }
  for (const h of m.headers) {
    const t = stringTest(h);
    const name = h.name;
    tests.push((r) => t(r.header(name)));
  }
  for (const q of m.queryParams) {
    const t = stringTest(q);
    const name = q.name;
    tests.push((r) => t(queryParam(r.query, name)));
  }
  const prefix = m.path.type === 'PathPrefix' ? pv : undefined;
  if (tests.length === 0) return { test: () => true, prefix };
  if (tests.length === 1) return { test: tests[0]!, prefix };
  return {
    prefix,
    test(req) {
      for (const t of tests) if (!t(req)) return false;
      return true;
    },
  };
}
