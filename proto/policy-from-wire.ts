// A compiled policy entry from the config stream (PolicyObject: key + JSON). The JSON is the controller's,
// but the agent reads it as untrusted bytes: an entry that does not parse, or is not the shape every stage
// relies on (an object of a known kind, its key the wire key, its payload an object), is refused here with
// the entry named, so the agent NACKs the update and keeps its config instead of failing later, deep in a
// stage, with a TypeError.
import { WeftError } from '../common/errors.js';
import type { CompiledPolicy } from '../common/policy.js';
import type { PolicyObject__Output as WirePolicy } from './generated/weft/v1/PolicyObject.js';

/** A config update the agent cannot use as sent; the update is NACKed with this message. */
export class ConfigDecodeError extends WeftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WEFT_ERR_CONFIG_DECODE', message, options);
  }
}

const PAYLOAD: Record<string, string> = { AuthorizationPolicy: 'authz', HTTPRoute: 'route', GRPCRoute: 'route', TrafficPolicy: 'traffic' };

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export function policyFromWire(p: WirePolicy): CompiledPolicy {
  const what = `policy entry ${JSON.stringify(p.key)}`;
  let v: unknown;
  try {
    v = JSON.parse(p.json);
  } catch (e) {
    throw new ConfigDecodeError(`${what}: its JSON does not parse (${(e as Error).message})`, { cause: e });
  }
  if (!isObject(v)) throw new ConfigDecodeError(`${what}: its JSON is not an object`);
  const payload = typeof v.kind === 'string' ? PAYLOAD[v.kind] : undefined;
  if (!payload) throw new ConfigDecodeError(`${what}: kind ${JSON.stringify(v.kind)} is not a policy kind this agent knows`);
  if (v.key !== p.key) throw new ConfigDecodeError(`${what}: its JSON says key ${JSON.stringify(v.key)}; the two must agree`);
  if (typeof v.namespace !== 'string' || typeof v.name !== 'string') throw new ConfigDecodeError(`${what}: namespace and name must be strings`);
  if (!isObject(v[payload])) throw new ConfigDecodeError(`${what}: field ${payload} must be an object`);
  return v as unknown as CompiledPolicy;
}
