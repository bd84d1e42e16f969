// A per-feature cost row: the same Weft path measured in the same run without and with some config
// applied (ten AuthorizationPolicies, a ten-rule route, a TrafficPolicy using every field, ...). The
// owner of a feature adds one small file exporting a FeatureScenario and one line in ./index.ts.
import type { ScenarioId } from '../scenarios.js';
import type { Scope } from '../topology.js';

/** What a scenario file may refer to: the bench sandbox's fixed names (bench/topology.ts). */
export interface FeatureContext {
  /** the meshed namespace holding the client and both servers */
  namespace: 'bench';
  trustDomain: string;
  /** SPIFFE-style principal of the meshed client (as AuthorizationPolicy `principals` spell it) */
  clientPrincipal: string;
  /** the server the scope's requests reach: pod label `app`, Service name, Service ports */
  server: { app: string; service: string; httpPort: number; h2cPort: number; tcpPort: number; targetHttpPort: number };
}

export interface FeatureScenario {
  /** short, stable id: the results key and the --features value */
  id: string;
  /** what is applied, for the table */
  label: string;
  /** who owns it (issue), for the table */
  owner: string;
  /** Kubernetes-shaped YAML (multi-document) applied through the controller for the "with" runs, then removed; '' for none */
  objects(ctx: FeatureContext): string;
  /**
   * Something running during the "with" runs instead of (or besides) objects, e.g. an operator's `weft tap`:
   * started before them, and the function it returns stops it after them.
   */
  during?(ctx: FeatureContext & { sandboxId: string }): Promise<() => Promise<void>>;
  /** scenarios measured without/with (default ol4 and max: added latency at 1000 rps and CPU per request) */
  scenarios?: ScenarioId[];
  /** which server pod (default same-node: the cost is the source proxy's; cross-node adds the destination's) */
  scope?: Scope;
}
