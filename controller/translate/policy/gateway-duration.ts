// Gateway API durations (GEP-2257): one to four <1-5 digits><h|m|s|ms> parts, e.g. "1h30m", "500ms", "0s".
// The schema already checked the shape; this turns it into milliseconds.
const PART = /([0-9]{1,5})(ms|h|m|s)/g;
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };

export function gatewayDurationMs(s: string): number {
  let total = 0;
  for (const m of s.matchAll(PART)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return total;
}
