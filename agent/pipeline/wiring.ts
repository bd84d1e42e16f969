// Where the policy features plug into the pipeline: one factory per stage, each called once per config
// version. Replace a default here with your feature's factory (one import and one line):
//   router      — issue 12 (routes, filters, timeouts, retries, budget): agent/routing/
//   authorizer  — issue 11 (AuthorizationPolicy, L4 + L7, destination side): agent/authz/
//   traffic     — issue 13 (balancers, circuit breaking, outlier, rate limit, fault, fallback): agent/traffic/
//   observers   — issue 14 (access log, spans): agent/observe/
// Tests pass their own factories to NodeProxy (options.stages) instead.
import { trafficStages } from '../traffic/stages.js';
import { allowAllAuthorizer, defaultRouter } from './defaults.js';
import type { StageFactories } from './stages.js';

export const STAGE_FACTORIES: StageFactories = {
  router: defaultRouter,
  authorizer: allowAllAuthorizer,
  traffic: trafficStages,
  observers: [],
};
