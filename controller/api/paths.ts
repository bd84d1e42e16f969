// The operator write API's paths (admin.ts serves them), apart so that clients (`weft apply`, benches) name
// them without loading the handler and the object store behind it.
export const APPLY_PATH = '/api/v1/apply';
export const DELETE_PATH = '/api/v1/delete';
export const ROTATE_ROOT_PATH = '/api/v1/ca/rotate-root';
