// PeerAuthentication beyond the schema: Istio's cross-field rules (portLevelMtls only with a selector, port
// keys are numbers) for sources that skip the CRD's CEL validations (local YAML), and the values Weft
// enforces. UNSET is Istio's "inherit from the parent", which is what omitting spec.mtls means here.
import { WeftConfigError } from '../../../common/errors.js';
import type { KubeObject } from '../../sources/types.js';

export function checkPeerAuthentication(obj: KubeObject, where: string): void {
  const spec = (obj.spec ?? {}) as { selector?: { matchLabels?: Record<string, string> }; mtls?: { mode?: string }; portLevelMtls?: Record<string, { mode?: string }> };
  const ports = spec.portLevelMtls;
  if (ports !== undefined) {
    if (!spec.selector?.matchLabels || Object.keys(spec.selector.matchLabels).length === 0) {
      throw new WeftConfigError(`${where}, field spec.portLevelMtls`, 'needs a selector with matchLabels: port-level modes name ports of specific workloads (as in Istio)');
    }
    for (const k of Object.keys(ports)) {
      if (!/^[1-9][0-9]{0,4}$/.test(k) || Number(k) > 65535) throw new WeftConfigError(`${where}, field spec.portLevelMtls.${k}`, 'keys must be port numbers 1-65535');
    }
  }
}
