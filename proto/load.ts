// Loads proto/weft/v1/mesh.proto at run time with @grpc/proto-loader and types it with the generated
// definitions (proto/generated). Options here must match those in proto/generate.mjs.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { ProtoGrpcType } from './generated/mesh.js';

/** compiled to dist/proto/load.js; the .proto stays in the source tree (shipped with the package) */
export const MESH_PROTO_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto', 'weft', 'v1', 'mesh.proto');

let cached: ProtoGrpcType | undefined;

export function loadMeshProto(): ProtoGrpcType {
  if (cached) return cached;
  const def = protoLoader.loadSync(MESH_PROTO_PATH, { longs: Number, defaults: true, oneofs: true, keepCase: false });
  cached = grpc.loadPackageDefinition(def) as unknown as ProtoGrpcType;
  return cached;
}

/** metadata keys of the node credentials every call carries */
export const NODE_METADATA = { authorization: 'authorization', node: 'x-weft-node', errorCode: 'x-weft-error-code' } as const;
