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

  /**
   * A PNG of the viewport with one element scrolled to its top: the view as a person sees it. (Clipping a
   * region far down a long page with captureBeyondViewport made Chromium stall on a busy machine.)
   */
  async screenshotOf(selector: string, height = 1000): Promise<Buffer> {
    await this.send('Emulation.setDeviceMetricsOverride', { width: 1600, height, deviceScaleFactor: 1, mobile: false });
    const found = await this.eval<boolean>(`(() => { const e = document.querySelector(${JSON.stringify(selector)}); if (!e) return false; e.scrollIntoView({ block: 'start' }); return true; })()`);
    if (!found) throw new Error(`no element ${selector} to screenshot`);
    const { data } = await this.send('Page.captureScreenshot', { format: 'png' });
    return Buffer.from(data as string, 'base64');
  }

  /** a key press as the keyboard sends it (keyDown with text, keyUp), to the focused element */
  async press(key: 'Enter' | 'Tab' | ' ', code = key === ' ' ? 'Space' : key): Promise<void> {
    const keyCode = key === 'Enter' ? 13 : key === 'Tab' ? 9 : 32;
    const text = key === 'Enter' ? '\r' : key === ' ' ? ' ' : undefined;
    await this.send('Input.dispatchKeyEvent', { type: 'keyDown', key, code, windowsVirtualKeyCode: keyCode, ...(text ? { text } : {}) });
    await this.send('Input.dispatchKeyEvent', { type: 'keyUp', key, code, windowsVirtualKeyCode: keyCode });
  }

  /** types text into the focused element */
  async type(text: string): Promise<void> {
    await this.send('Input.insertText', { text });
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
