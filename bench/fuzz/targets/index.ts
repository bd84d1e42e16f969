// Every fuzz target, in the order the job runs them.
import type { FuzzTarget } from '../target.js';
import { configTarget } from './config.js';
import { csrTarget } from './csr.js';
import { h1Target } from './h1.js';
import { h2Target } from './h2.js';
import { objectsTarget } from './objects.js';

export const TARGETS: FuzzTarget[] = [h1Target, h2Target, csrTarget, objectsTarget, configTarget];
