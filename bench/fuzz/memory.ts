// The memory oracle: heap and RSS sampled over a run. A leak shows as a floor that keeps rising: the lowest
// heap seen in each tenth of the run (right after a collection) is the live set; the run fails when the
// last tenth's floor is well above the floor early in the run. Peaks from garbage are not counted.
export interface MemSample {
  n: number;
  rss: number;
  heapUsed: number;
}

export interface MemVerdict {
  ok: boolean;
  rssMaxMb: number;
  heapFloorEarlyMb: number;
  heapFloorLateMb: number;
  why?: string;
}

const MB = 1024 * 1024;

export function memoryVerdict(samples: readonly MemSample[], slackMb = 48): MemVerdict {
  const rssMaxMb = Math.round(Math.max(0, ...samples.map((s) => s.rss)) / MB);
  if (samples.length < 20) return { ok: true, rssMaxMb, heapFloorEarlyMb: 0, heapFloorLateMb: 0 };
  const tenth = Math.floor(samples.length / 10);
  const floor = (from: number, to: number) => Math.min(...samples.slice(from, to).map((s) => s.heapUsed)) / MB;
  // the first tenth warms up (code compiled, caches filled): compare the second with the last
  const early = floor(tenth, 2 * tenth);
  const late = floor(samples.length - tenth, samples.length);
  const ok = late <= early * 1.5 + slackMb;
  return {
    ok,
    rssMaxMb,
    heapFloorEarlyMb: Math.round(early),
    heapFloorLateMb: Math.round(late),
    ...(ok ? {} : { why: `live heap grew from ${Math.round(early)} MB to ${Math.round(late)} MB over the run` }),
  };
}
