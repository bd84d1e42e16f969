// Hop-by-hop header handling (RFC 9110 §7.6.1): Connection, the fields it names, and the fields that
// only ever describe one hop are not forwarded. Everything else passes through byte-for-byte, in order
// and case, so the proxy adds nothing a pod can see.

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'upgrade', 'proxy-authenticate', 'proxy-authorization']);

/** Filters a raw header list (Node's rawHeaders: [name, value, name, value, ...]). */
export function endToEndRaw(raw: string[], keepUpgrade = false): string[] {
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') {
      named ??= new Set();
      for (const t of raw[i + 1]!.split(',')) named.add(t.trim().toLowerCase());
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      // "TE: trailers" says the client accepts trailers; it is end-to-end meaningful (and gRPC requires it).
      if (lower === 'te' && raw[i + 1]!.trim().toLowerCase() === 'trailers') {
        out.push(name, raw[i + 1]!);
        continue;
      }
      if (!(keepUpgrade && (lower === 'upgrade' || lower === 'connection'))) continue;
    } else if (named?.has(lower) && !(keepUpgrade && lower === 'upgrade')) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

/** Connection-specific fields are forbidden in HTTP/2 (RFC 9113 §8.2.2); drop them from a header object. */
export function h2Headers<T extends Record<string, unknown>>(h: T): T {
  const out = { ...h };
  for (const k of ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings']) delete out[k];
  const te = out['te'];
  if (te !== undefined && String(te).trim().toLowerCase() !== 'trailers') delete out['te'];
  return out;
}

/** Raw trailer list → object for addTrailers/sendTrailers, keeping repeated fields. */
export function rawPairs(raw: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}
