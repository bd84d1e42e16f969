// The access-log annotation on a Namespace or Pod: the values the proxies act on (json, off). Anything else
// is refused when the object is applied, naming it, rather than silently logging nothing.
import { WeftConfigError } from '../../../common/errors.js';
import { ACCESS_LOG_ANNOTATION, ACCESS_LOG_VALUES } from '../../../common/mesh.js';
import type { KubeObject } from '../../sources/types.js';

export function checkAccessLogAnnotation(obj: KubeObject, where: string): void {
  const v = obj.metadata.annotations?.[ACCESS_LOG_ANNOTATION];
  if (v === undefined || (ACCESS_LOG_VALUES as readonly string[]).includes(v)) return;
  throw new WeftConfigError(`${where}, field metadata.annotations.${ACCESS_LOG_ANNOTATION}`, `"${v}" is not supported: use ${ACCESS_LOG_VALUES.map((x) => `"${x}"`).join(' or ')}`);
}
