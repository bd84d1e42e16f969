// HTTP/2's side of hop-by-hop handling: the connection-specific fields RFC 9113 §8.2.2 forbids. HTTP/1
// heads are filtered by the codec (h1/head.ts: endToEnd, RFC 9110 §7.6.1).

/** Connection-specific fields are forbidden in HTTP/2 (RFC 9113 §8.2.2); drop them from a header object. */
export function h2Headers<T extends Record<string, unknown>>(h: T): T {
  const out = { ...h };
  for (const k of ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings']) delete out[k];
  const te = out['te'];
  if (te !== undefined && String(te).trim().toLowerCase() !== 'trailers') delete out['te'];
  return out;
}
