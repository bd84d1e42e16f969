// A headless Chromium (Debian's `chromium`) driven over the DevTools protocol on a pipe
// (--remote-debugging-pipe: NUL-separated JSON on fds 3 and 4), so a test can read the live DOM after the
// page's script ran, act, read it again, and take a screenshot. No port, no extra npm dependency.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

export const CHROMIUM = '/usr/bin/chromium';

interface Pending {
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: Error) => void;
}

export class HeadlessChromium {
  private readonly proc: ChildProcess;
  private readonly dir: string;
  private readonly out: Writable;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private buf = '';
  private sessionId = '';
  stderr = '';

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'weft-chromium-'));
    this.proc = spawn(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-extensions',
        '--hide-scrollbars',
        '--window-size=1600,600',
        `--user-data-dir=${this.dir}`,
        '--remote-debugging-pipe',
        'about:blank',
      ],
      { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
    );
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.out = this.proc.stdio[3] as Writable;
    const input = this.proc.stdio[4] as Readable;
    input.on('data', (d: Buffer) => this.onData(d.toString('utf8')));
    this.proc.on('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error(`chromium exited: ${this.stderr.slice(-500)}`));
      this.pending.clear();
    });
  }

  private onData(s: string): void {
    this.buf += s;
    let i: number;
    while ((i = this.buf.indexOf('\0')) >= 0) {
      const msg = JSON.parse(this.buf.slice(0, i)) as { id?: number; result?: Record<string, unknown>; error?: { message: string } };
      this.buf = this.buf.slice(i + 1);
      const p = msg.id !== undefined ? this.pending.get(msg.id) : undefined;
      if (!p) continue;
      this.pending.delete(msg.id!);
      if (msg.error) p.reject(new Error(msg.error.message));
      else p.resolve(msg.result ?? {});
    }
  }

  send(method: string, params: Record<string, unknown> = {}, session = true): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const msg = { id, method, params, ...(session && this.sessionId ? { sessionId: this.sessionId } : {}) };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.out.write(JSON.stringify(msg) + '\0');
    });
  }

  /** open a page on `url` and attach to it */
  async open(url: string): Promise<void> {
    const { targetId } = await this.send('Target.createTarget', { url }, false);
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true }, false);
    this.sessionId = sessionId as string;
  }

  /** evaluate an expression in the page, returning its JSON value */
  async eval<T>(expression: string): Promise<T> {
    const r = (await this.send('Runtime.evaluate', { expression, returnByValue: true })) as { result: { value: T }; exceptionDetails?: { text: string } };
    if (r.exceptionDetails) throw new Error(`page threw: ${r.exceptionDetails.text}`);
    return r.result.value;
  }

  /** poll an expression until it is truthy */
  async until<T>(expression: string, ms: number, what: string): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await this.eval<T>(expression).catch(() => undefined);
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting in the page for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async screenshot(): Promise<Buffer> {
    const { data } = await this.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true });
    return Buffer.from(data as string, 'base64');
  }

  async close(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.send('Browser.close', {}, false).catch(() => undefined);
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
