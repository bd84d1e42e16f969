// PeerAuthentication portLevelMtls travels on the config stream: the controller's hand-written encoder
// writes Workload.port_mtls and the agent's decoder (proto-loader over mesh.proto) reads it back.
import t from 'tap';

import type { Workload } from '../../common/mesh.js';
import { loadMeshProto } from '../../proto/load.js';
import { workloadPiece } from '../../proto/wire-encode.js';

// the agent's own decoder: StreamConfig's response deserializer (proto-loader, defaults on)
const decode = (loadMeshProto().weft.v1.MeshController.service.StreamConfig.responseDeserialize as (b: Buffer) => unknown);

const w: Workload = { uid: 'u1', namespace: 'shop', name: 'db-0', serviceAccount: 'db', node: 'n1', ips: ['10.98.1.9'], labels: { app: 'db' }, meshed: true, hostNetwork: false, mtlsMode: 'STRICT', portMtls: { '9100': 'PERMISSIVE' }, workloadName: 'db' };

t.test('port_mtls is encoded with the workload', async (t) => {
  const msg = decode(workloadPiece(w, true)) as { upsertWorkloads: Array<{ mtlsMode: string; portMtls: Record<string, string> }> };
  t.equal(msg.upsertWorkloads[0]!.mtlsMode, 'STRICT');
  t.same(msg.upsertWorkloads[0]!.portMtls, { '9100': 'PERMISSIVE' });
  const { portMtls: _omit, ...plain } = w;
  const none = decode(workloadPiece(plain, true)) as { upsertWorkloads: Array<{ portMtls: Record<string, string> }> };
  t.same(none.upsertWorkloads[0]!.portMtls, {}, 'absent when the workload has none');
});
