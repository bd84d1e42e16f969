// The per-feature cost rows `npm run bench` measures (see bench/README.md, "Cost per feature"). One line per
// feature; its scenario lives in its own file next to this one.
import { authzTenPolicies } from './authz-ten-policies.js';
import { trafficEveryPolicy } from './traffic-every-policy.js';
import { routeTenRules } from './route-ten-rules.js';
import { tapOpen, tapOpen1000 } from './tap-open.js';
import type { FeatureScenario } from './types.js';

export const FEATURES: FeatureScenario[] = [
  authzTenPolicies,
  trafficEveryPolicy,
  routeTenRules,
  tapOpen,
  tapOpen1000,
];
