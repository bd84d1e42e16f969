// RequestMirror: which mirrors a request is copied to (each by its percent), and the Host the copy
// carries (Envoy's and Istio's "-shadow" suffix, so the mirror's logs tell copies from real traffic). The
// copy goes fire-and-forget: its response is read and dropped, its failure changes nothing for the client.
import type { MirrorTarget } from './router.js';

export function chosenMirrors(mirrors: readonly MirrorTarget[] | undefined, random: () => number = Math.random): MirrorTarget[] {
  if (!mirrors || mirrors.length === 0) return [];
  return mirrors.filter((m) => m.percent >= 100 || random() * 100 < m.percent);
}

/** "echo:80" → "echo-shadow:80" */
export function shadowHost(authority: string): string {
  const m = /^(\[[^\]]*\]|[^:]*)(:[0-9]+)?$/.exec(authority);
  if (!m) return `${authority}-shadow`;
  return `${m[1]}-shadow${m[2] ?? ''}`;
}
