// The fail-mode annotation (weft.io/fail-mode: closed|open): what capture does with a namespace's captured
// connections while the node proxy is not serving. It is a Namespace setting; on a Pod, or with another
// value, it is refused when applied, naming the object, rather than accepted and ignored.
import { WeftConfigError } from '../../../common/errors.js';
import { FAIL_MODE_ANNOTATION, FAIL_MODE_VALUES } from '../../../common/mesh.js';
import type { KubeObject } from '../../sources/types.js';

export function checkFailModeAnnotation(obj: KubeObject, where: string): void {
  const v = obj.metadata.annotations?.[FAIL_MODE_ANNOTATION];
  if (v === undefined) return;
  const field = `${where}, field metadata.annotations.${FAIL_MODE_ANNOTATION}`;
  if (obj.kind !== 'Namespace') throw new WeftConfigError(field, `the fail mode is set per namespace: annotate the Namespace ${obj.metadata.namespace ?? ''} instead`);
  if (!(FAIL_MODE_VALUES as readonly string[]).includes(v)) throw new WeftConfigError(field, `"${v}" is not supported: use ${FAIL_MODE_VALUES.map((x) => `"${x}"`).join(' or ')}`);
}
