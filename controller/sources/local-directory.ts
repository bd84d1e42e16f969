// Workload source: a directory of Kubernetes YAML (the sandbox, tests, GitOps-style local installs),
// watched for changes. Each file is its own source in the store: a file that no longer parses keeps its
// last good objects, a deleted file takes its objects with it, an invalid object is refused (and logged)
// while the rest of the file applies.
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';

import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { silentLogger } from '../../common/log.js';
import { ALL_KIND_NAMES } from '../store/kinds.js';
import type { ObjectSink, Source } from './types.js';
import { parseObjects } from './yaml-objects.js';

const YAML_FILE = /\.(ya?ml|json)$/;

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    else if (YAML_FILE.test(e.name)) out.push(p);
  }
  return out.sort();
}

export interface LocalDirectorySourceOptions {
  dir: string;
  logger?: Logger;
  /** quiet time before a burst of file changes is re-read; default 150 ms */
  debounceMs?: number;
}

export class LocalDirectorySource implements Source {
  private sink: ObjectSink | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly known = new Map<string, number>();
  private readonly log: Logger;
  private running: Promise<void> = Promise.resolve();
  /** the problems found on the last scan, per file (for status pages and tests) */
  readonly problems = new Map<string, string[]>();

  constructor(private readonly opts: LocalDirectorySourceOptions) {
    this.log = opts.logger ?? silentLogger;
  }

  async start(sink: ObjectSink): Promise<void> {
    this.sink = sink;
    await this.scan();
    try {
      this.watcher = watch(this.opts.dir, { recursive: true }, () => this.schedule());
      this.watcher.on('error', (e) => this.log.warn('directory watch failed', { dir: this.opts.dir, err: e }));
    } catch (e) {
      this.log.warn('cannot watch directory; changes need a restart', { dir: this.opts.dir, err: e });
    }
  }

  async stop(): Promise<void> {
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** re-read now (tests; the watcher calls it debounced) */
  rescan(): Promise<void> {
    this.running = this.running.then(() => this.scan());
    return this.running;
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.rescan(), this.opts.debounceMs ?? 150);
    this.timer.unref?.();
  }

  private async scan(): Promise<void> {
    const sink = this.sink!;
    const files = await listFiles(this.opts.dir);
    const present = new Set(files);
    for (const f of [...this.known.keys()]) {
      if (present.has(f)) continue;
      sink.replaceAll(ALL_KIND_NAMES, [], this.sourceOf(f));
      this.known.delete(f);
      this.problems.delete(f);
      this.log.info('file removed; its objects are gone', { file: f });
    }
    for (const f of files) {
      let mtime: number;
      try {
        mtime = (await stat(f)).mtimeMs;
      } catch {
        continue;
      }
      if (this.known.get(f) === mtime) continue;
      this.known.set(f, mtime);
      let objs;
      try {
        objs = parseObjects(await readFile(f, 'utf8'), relative(process.cwd(), f) || f);
      } catch (e) {
        this.problems.set(f, [errorMessage(e)]);
        this.log.warn('file refused; its last good objects stay', { file: f, error: errorMessage(e) });
        continue;
      }
      const { refused } = sink.replaceAll(ALL_KIND_NAMES, objs, this.sourceOf(f));
      if (refused.length > 0) {
        this.problems.set(f, refused.map((r) => errorMessage(r.error)));
        for (const r of refused) this.log.warn('object refused', { file: f, error: errorMessage(r.error) });
      } else this.problems.delete(f);
      this.log.info('read file', { file: f, objects: objs.length - refused.length, refused: refused.length });
    }
  }

  private sourceOf(file: string): string {
    return `file:${file}`;
  }
}
