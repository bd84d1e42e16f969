// `weft capture status|uninstall [--bpffs DIR]`: inspect or remove an installed capture instance from its
// pins, with no agent running. `uninstall` is what `weft agent --uninstall` calls too.
import { WeftConfigError } from '../../common/errors.js';
import { createLogger } from '../../common/log.js';
import { captureStatus } from './status.js';
import { DEFAULT_PIN_DIR, uninstallCapture } from './uninstall.js';

const USAGE = `usage: weft capture status|uninstall [--bpffs DIR] [--json]

  status     show the pinned links (and the cgroup they are attached to), map sizes and counters
  uninstall  detach every capture program and remove every pin of the instance

  --bpffs DIR  the instance's pin directory (default ${DEFAULT_PIN_DIR})
  --json       machine-readable output
`;

export async function captureCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  let pinDir = DEFAULT_PIN_DIR;
  let json = false;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === '--bpffs') {
      const v = rest[++i];
      if (!v) throw new WeftConfigError('--bpffs', 'needs a directory, e.g. --bpffs /sys/fs/bpf/weft/default');
      pinDir = v;
    } else if (a.startsWith('--bpffs=')) pinDir = a.slice('--bpffs='.length);
    else if (a === '--json') json = true;
    else throw new WeftConfigError(`weft capture ${sub ?? ''}`.trim(), `unknown argument "${a}"\n\n${USAGE}`);
  }
  if (sub === 'status') {
    const s = captureStatus(pinDir);
    if (json) process.stdout.write(JSON.stringify(s, null, 2) + '\n');
    else {
      process.stdout.write(`capture instance ${s.pinDir}\n`);
      for (const l of s.links) process.stdout.write(`  ${l.name.padEnd(20)} ${l.attached ? `attached to cgroup ${l.cgroupId} (link ${l.id})` : l.pinned ? 'pinned, cgroup gone' : 'missing'}\n`);
      if (s.config) process.stdout.write(`  proxy ${[s.config.proxyIpv4, s.config.proxyIpv6].filter(Boolean).join(', ')} port ${s.config.proxyPort}\n`);
      for (const [m, n] of Object.entries(s.maps)) process.stdout.write(`  map ${m.padEnd(16)} ${n} entries\n`);
      for (const [c, n] of Object.entries(s.counters)) process.stdout.write(`  ${c.padEnd(20)} ${n}\n`);
    }
    return 0;
  }
  if (sub === 'uninstall') {
    const r = uninstallCapture(pinDir, createLogger({ component: 'capture' }));
    if (json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else process.stdout.write(`detached ${r.detached.length} links, removed ${r.unpinned.length} pins${r.removedDir ? ` and ${pinDir}` : ''}\n`);
    return 0;
  }
  process.stderr.write(USAGE);
  return sub === undefined || sub === '-h' || sub === '--help' ? 0 : 2;
}
