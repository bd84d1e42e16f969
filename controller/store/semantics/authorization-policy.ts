// AuthorizationPolicy beyond the schema: every field, value and `when` key is run through the compiler
// (controller/translate/policy/authz.ts), which refuses what Weft does not enforce (JWT principals, remote
// IPs, CUSTOM, path templates, unknown condition keys ...) naming the object and the field.
import { compileAuthzObject } from '../../translate/policy/authz.js';
import type { KubeObject } from '../../sources/types.js';

export function checkAuthorizationPolicy(obj: KubeObject, where: string): void {
  // the root namespace only changes the scope, never whether the object is valid
  compileAuthzObject(obj, where, '');
}
