// Tap (issue 14): the proxy's cost per request while an operator taps everything (`weft tap -o json`, no
// filter, all namespaces), against nobody tapping (one boolean per request). At the default --max-rps 100
// most requests of a loaded proxy are checked, counted and dropped; `tap-open-1000` lets ten times as many
// events through (built, serialized and sent to the controller).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import type { FeatureContext, FeatureScenario } from './types.js';

// compiled to dist/bench/features/: the repository's bin/weft.js is three levels up
const WEFT = fileURLToPath(new URL('../../../bin/weft.js', import.meta.url));

/** `weft tap` on the bench sandbox, its output read and thrown away (a tapper keeping up), until stopped. */
function tapping(maxRps: number) {
  return async (ctx: FeatureContext & { sandboxId: string }): Promise<() => Promise<void>> => {
    const child = spawn(process.execPath, [WEFT, 'tap', '--sandbox', ctx.sandboxId, '-o', 'json', '--max-rps', String(maxRps)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // the tap is open on the agents once the controller's start line arrived
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`weft tap did not start within 20 s: ${err}`)), 20_000);
      child.stdout.once('data', () => (clearTimeout(timer), resolve()));
      child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`weft tap exited ${code}: ${err}`))));
    });
    child.stdout.resume();
    return async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM'); // bin/weft.js passes SIGTERM on to a child it runs on a newer Node, not SIGINT
      await exited;
    };
  };
}

export const tapOpen: FeatureScenario = {
  id: 'tap-open',
  label: 'an operator tapping every request (weft tap -o json, default --max-rps 100)',
  owner: 'issue 14',
  objects: () => '',
  during: tapping(100),
};

export const tapOpen1000: FeatureScenario = {
  id: 'tap-open-1000',
  label: 'an operator tapping every request at --max-rps 1000',
  owner: 'issue 14',
  objects: () => '',
  during: tapping(1000),
};
