// A reader for the Prometheus text exposition format (what agents serve on :15020/metrics): samples with
// their labels. Only what the golden metrics need: names, label sets, values; comments and timestamps skipped.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function unescape(s: string): string {
  return s.replace(/\\(["\\n])/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

/** Parses exposition text; `keep` filters by metric name before the labels are parsed (cheap). */
export function parseExposition(text: string, keep?: (name: string) => boolean): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    const nameEnd = brace >= 0 && (space < 0 || brace < space) ? brace : space;
    if (nameEnd <= 0) continue;
    const name = line.slice(0, nameEnd);
    if (keep && !keep(name)) continue;
    const labels: Record<string, string> = {};
    let rest: string;
    if (line[nameEnd] === '{') {
      // label values are quoted and may hold commas, braces and escaped quotes
      const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/y;
      re.lastIndex = nameEnd + 1;
      let m: RegExpExecArray | null;
      let pos = re.lastIndex;
      while ((m = re.exec(line))) {
        labels[m[1]!] = m[2]!.includes('\\') ? unescape(m[2]!) : m[2]!;
        pos = re.lastIndex; // a failed sticky exec resets lastIndex to 0
      }
      const close = line.indexOf('}', pos);
      if (close < 0) continue;
      rest = line.slice(close + 1).trim();
    } else {
      rest = line.slice(nameEnd + 1).trim();
    }
    const v = rest.split(/\s+/)[0]!;
    const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v);
    if (!Number.isNaN(value) || v === 'NaN') out.push({ name, labels, value });
  }
  return out;
}

/** A stable key for a label set (sorted names). */
export function seriesKey(name: string, labels: Record<string, string>): string {
  const names = Object.keys(labels).sort();
  return name + '{' + names.map((n) => `${n}=${JSON.stringify(labels[n])}`).join(',') + '}';
}
