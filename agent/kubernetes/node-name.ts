// The agent learns which node it runs on from the downward API (`NODE_NAME` from spec.nodeName in the
// DaemonSet). The environment is passed in as a map so tests and the sandbox never touch process.env.
import { WeftError } from '../../common/errors.js';

export const NODE_NAME_ENV = 'NODE_NAME';

// RFC 1123 subdomain, the rule Kubernetes applies to Node names.
const NODE_NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * The node name: `flag` (the `--node` flag) wins, else `NODE_NAME` from the environment. Throws
 * WEFT_ERR_K8S_NODE_NAME when neither is set or the value is not a valid Node name.
 */
export function resolveNodeName(env: Readonly<Record<string, string | undefined>>, flag?: string): string {
  const raw = flag ?? env[NODE_NAME_ENV];
  const where = flag !== undefined ? '--node' : NODE_NAME_ENV;
  if (raw === undefined || raw.trim() === '') {
    throw new WeftError(
      'WEFT_ERR_K8S_NODE_NAME',
      `the node name is not set: pass --node or set ${NODE_NAME_ENV} from the downward API ` +
        `(env: - name: ${NODE_NAME_ENV}, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}), as daemonset/agent-daemonset.yaml does`,
    );
  }
  const name = raw.trim();
  if (name.length > 253 || !NODE_NAME_RE.test(name)) {
    throw new WeftError('WEFT_ERR_K8S_NODE_NAME', `${where}="${name}" is not a valid Kubernetes node name (RFC 1123 subdomain, at most 253 characters)`);
  }
  return name;
}
