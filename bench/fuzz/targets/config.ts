// The agent's config decoder: ConfigUpdate bytes as the gRPC stream hands them over (the real
// deserializer from proto/load.ts), then what agent/config/client.ts does with each one: the chunk
// assembler and the merge onto the config in force (proto/delta.ts), then the agent's apply (MeshState
// indexes and the pipeline's stages, agent/pipeline/wiring.ts). Seeds are real updates: the controller's
// translation of every example object, as a snapshot and as a delta. Inputs: those bytes mutated, random
// bytes, and updates whose fields (policy JSON included) are mutated as trees. Oracles: bytes that do not
// decode are refused by the decoder; an update the agent cannot use is refused with a deliberate error
// (NACK), never a TypeError from deep inside, and leaves the config in force untouched; an accepted one
// builds every pipeline stage (else the indexes and the stages would disagree: half applied).
import fc from 'fast-check';
import { isWeftError } from '../../../common/errors.js';
import { silentLogger } from '../../../common/log.js';
import type { MeshConfig } from '../../../common/mesh.js';
import { ObjectStore } from '../../../controller/store/object-store.js';
import { BUILTIN_KINDS, KindRegistry } from '../../../controller/store/kinds.js';
import { CRD_DIR, loadCrdSchemas } from '../../../controller/store/crd-schemas.js';
import { translate } from '../../../controller/translate/mesh-config.js';
import { applyConverted, deltaUpdate, DeltaBaseMismatchError, snapshotUpdate, UpdateAssembler } from '../../../proto/delta.js';
import { loadMeshProto } from '../../../proto/load.js';
import type { ConfigUpdate__Output } from '../../../proto/generated/weft/v1/ConfigUpdate.js';
import { MeshState } from '../../../agent/state/mesh-state.js';
import { VersionBackends } from '../../../agent/pipeline/backends.js';
import { RuntimeState } from '../../../agent/pipeline/runtime.js';
import { STAGE_FACTORIES } from '../../../agent/pipeline/wiring.js';
import { mutatedBytes } from '../mutate.js';
import { OracleViolation, type FuzzContext, type FuzzTarget } from '../target.js';
import { seedObjects } from './object-seeds.js';
import { applyTreeOps, treeOp, type Json } from './tree-mutate.js';

type Input = { frames: Buffer[] };

const BUNDLE = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

/** The controller's config for the example objects, and a second version with one thing changed. */
function seedConfigs(): [MeshConfig, MeshConfig] {
  const kinds = new KindRegistry(BUILTIN_KINDS);
  loadCrdSchemas(CRD_DIR, kinds, silentLogger);
  const store = new ObjectStore(kinds);
  for (const o of seedObjects()) store.upsert(o, 'seed');
  const opts = { trustDomain: 'cluster.local', rootNamespace: 'weft-system' };
  const v1 = translate(store, opts, 1);
  store.delete({ apiVersion: 'v1', kind: 'Pod', namespace: 'shop', name: 'web-1' }, 'seed');
  return [v1, { ...translate(store, opts, 2), nodes: [{ name: 'node-1', ip: '10.99.0.1' }] }];
}

/** Policy JSON as a tree, so tree mutations reach inside it; back to a string before encoding. */
function withPolicyTrees(u: Json): Json {
  const o = u as { upsertPolicies?: { json: string }[] };
  return { ...o, upsertPolicies: (o.upsertPolicies ?? []).map((p) => ({ ...p, json: JSON.parse(p.json) as Json })) } as Json;
}
function withPolicyStrings(u: Json): Json {
  const o = u as { upsertPolicies?: unknown };
  if (!Array.isArray(o.upsertPolicies)) return u;
  return { ...o, upsertPolicies: o.upsertPolicies.map((p: unknown) => (p && typeof p === 'object' && 'json' in p && typeof p.json !== 'string' ? { ...p, json: JSON.stringify(p.json) } : p)) } as Json;
}

export const configTarget: FuzzTarget = {
  name: 'config',
  surface: 'proto/load.ts deserializer, proto/delta.ts (UpdateAssembler, applyConverted), agent/config/client.ts merge, MeshState + pipeline stages',
  async setup(): Promise<FuzzContext<unknown>> {
    const method = loadMeshProto().weft.v1.MeshController.service.StreamConfig;
    const serialize = method.responseSerialize as (u: unknown) => Buffer;
    const deserialize = method.responseDeserialize as (b: Buffer) => ConfigUpdate__Output;
    const [v1, v2] = seedConfigs();
    const snapshot = snapshotUpdate(v1, BUNDLE);
    const delta = deltaUpdate(v1, v2, BUNDLE, BUNDLE)!;
    const chunkA = { ...snapshot, upsertServices: snapshot.upsertServices!.slice(0, 1), more: true };
    const chunkB = { ...snapshot, upsertServices: snapshot.upsertServices!.slice(1), more: false };
    const seedUpdates = [snapshot, delta, chunkA, chunkB] as unknown as Json[];
    const seedBytes = seedUpdates.map((u) => serialize(u));
    const trees = seedUpdates.map(withPolicyTrees);

    const frame: fc.Arbitrary<Buffer> = fc.oneof(
      { weight: 4, arbitrary: mutatedBytes(seedBytes, 4) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)) },
      {
        weight: 4,
        arbitrary: fc.tuple(fc.nat(trees.length - 1), fc.array(treeOp, { minLength: 1, maxLength: 3 })).map(([i, ops]) => {
          try {
            return serialize(withPolicyStrings(applyTreeOps(trees[i]!, ops)));
          } catch {
            return seedBytes[i]!; // a tree protobufjs cannot encode (a string where a message goes): the seed
          }
        }),
      },
    );

    const log = silentLogger;
    // what the agent holds before the fuzzed frames: the seed snapshot, decoded as the agent would
    const initial = applyConverted(undefined, snapshot as unknown as ConfigUpdate__Output, new UpdateAssembler().add(deserialize(seedBytes[0]!))!.entries);
    return {
      arbitrary: fc.record({ frames: fc.array(frame, { minLength: 1, maxLength: 3 }) }) as fc.Arbitrary<unknown>,
      check(raw) {
        const { frames } = raw as Input;
        // the agent holds version 1 (the seed snapshot) when the frames arrive
        const state = new MeshState('node-1');
        let current = initial;
        state.update(current.config);
        const assembler = new UpdateAssembler();
        for (const bytes of frames) {
          let u: ConfigUpdate__Output;
          try {
            u = deserialize(bytes);
          } catch {
            continue; // grpc-js ends the call with INTERNAL; the agent reconnects and gets a snapshot
          }
          const before = state.config;
          let next;
          try {
            const whole = assembler.add(u);
            if (!whole) continue;
            next = applyConverted(current.config, whole.head, whole.entries);
            state.update(next.config);
          } catch (e) {
            if (!(isWeftError(e) || e instanceof DeltaBaseMismatchError)) {
              throw new OracleViolation('wrong', `the update was refused with ${(e as Error)?.name}: ${(e as Error)?.message} (not a deliberate refusal)`, { cause: e });
            }
            if (state.config !== before) throw new OracleViolation('wrong', 'a refused update changed the config in force');
            continue;
          }
          // accepted: the pipeline's stages must build from it
          const input = { config: state.config, state, backends: new VersionBackends(state), runtime: new RuntimeState(), log };
          try {
            STAGE_FACTORIES.router(input);
            STAGE_FACTORIES.authorizer(input);
            STAGE_FACTORIES.traffic(input);
            for (const f of STAGE_FACTORIES.observers) f(input);
          } catch (e) {
            throw new OracleViolation('wrong', `accepted config version ${next.config.version}, then its pipeline stages threw ${(e as Error).name}: ${(e as Error).message}`, { cause: e });
          }
          current = next;
        }
      },
      show: (raw) => JSON.stringify((raw as Input).frames.map((b) => b.toString('base64'))),
      close: async () => {},
    };
  },
};
