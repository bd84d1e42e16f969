// One HTTP/1 message head as the codec sees it: the header list collected from llhttp's callbacks, the
// original bytes, and what the proxy must decide from it (hop-by-hop fields per RFC 9110 §7.6.1, framing
// checks beyond llhttp's own, re-serialisation when a field must go).

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade', 'proxy-authenticate', 'proxy-authorization']);

/** Collects a head's fields from llhttp callbacks (names and values may arrive in pieces). */
export class HeadCollector {
  raw: string[] = [];
  url = '';
  /** true once the head is complete: later field callbacks are chunked trailers, not head fields */
  done = false;
  private lastWasValue = true;

  reset(): void {
    this.raw = [];
    this.url = '';
    this.done = false;
    this.lastWasValue = true;
  }

  url_(buf: Buffer, at: number, len: number): void {
    this.url += buf.toString('latin1', at, at + len);
  }

  field(buf: Buffer, at: number, len: number): void {
    if (this.done) return;
    const s = buf.toString('latin1', at, at + len);
    if (this.lastWasValue) this.raw.push(s, '');
    else this.raw[this.raw.length - 2] += s;
    this.lastWasValue = false;
  }

  value(buf: Buffer, at: number, len: number): void {
    if (this.done) return;
    this.raw[this.raw.length - 1] += buf.toString('latin1', at, at + len);
    this.lastWasValue = true;
  }
}

export function headerValue(raw: readonly string[], lower: string): string | undefined {
  let out: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === lower.length && n.toLowerCase() === lower) out = out === undefined ? raw[i + 1]! : `${out}, ${raw[i + 1]!}`;
  }
  return out;
}

/** Does the head carry a field that must not be forwarded (so its original bytes cannot be)? */
export function hasHopByHop(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    // Cheap pre-filter on length before lower-casing: the hop-by-hop names are 2..19 characters.
    if (n.length > 19) continue;
    const l = n.toLowerCase();
    if (HOP_BY_HOP.has(l)) {
      if (l === 'te' && raw[i + 1]!.trim().toLowerCase() === 'trailers') continue;
      return true;
    }
  }
  return false;
}

/** The head's fields without hop-by-hop ones (and those its Connection header names). */
export function endToEnd(raw: readonly string[], keepUpgrade: boolean): string[] {
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
    const l = name.toLowerCase();
    if (HOP_BY_HOP.has(l)) {
      // "TE: trailers" is end-to-end meaningful (gRPC requires it).
      if (l === 'te' && raw[i + 1]!.trim().toLowerCase() === 'trailers') out.push(name, raw[i + 1]!);
      else if (keepUpgrade && (l === 'upgrade' || l === 'connection')) out.push(name, raw[i + 1]!);
      continue;
    }
    if (l === 'transfer-encoding' || l === 'content-length') {
      // Framing fields stay: the body is forwarded in the framing it arrived in.
      out.push(name, raw[i + 1]!);
      continue;
    }
    if (named?.has(l)) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

/** "<start line>\r\n" + fields + "\r\n", latin1 (header bytes are octets, not UTF-8). */
export function serializeHead(startLine: string, raw: readonly string[]): Buffer {
  let s = startLine + '\r\n';
  for (let i = 0; i < raw.length; i += 2) s += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return Buffer.from(s + '\r\n', 'latin1');
}

/** The start line of a head's original bytes. */
export function startLineOf(head: Buffer): string {
  const nl = head.indexOf(0x0d);
  return head.toString('latin1', 0, nl < 0 ? head.length : nl);
}

/**
 * Framing llhttp accepts but a hop behind us might read differently: refused, so every hop sees the same
 * message boundaries. Returns why, or undefined when the request is fine.
 */
export function ambiguousFraming(raw: readonly string[], httpMinor: number): string | undefined {
  let te = 0;
  let teValue = '';
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === 17 && n.toLowerCase() === 'transfer-encoding') {
      te++;
      teValue = raw[i + 1]!;
    }
  }
  if (te === 0) return undefined;
  if (httpMinor === 0) return 'Transfer-Encoding in an HTTP/1.0 request';
  if (te > 1) return 'more than one Transfer-Encoding field';
  if (teValue.trim().toLowerCase() !== 'chunked') return `Transfer-Encoding other than "chunked": ${JSON.stringify(teValue)}`;
  return undefined;
}
