// What every workload source (Kubernetes informers, a local YAML directory, `weft apply`) feeds the
// controller's object store. Sources know nothing of validation or translation: the store validates each
// object (throwing WeftConfigError naming object and field, changing nothing) and the translator turns the
// store's contents into per-node MeshConfig.

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
}

export interface ObjectSink {
  /** add or replace one object; throws WeftConfigError (and changes nothing) when it is invalid */
  upsert(obj: KubeObject, source: string): void;
  /** remove one object; unknown objects are ignored */
  delete(ref: ObjectRef, source: string): void;
  /**
   * replace everything this source contributed of these kinds with `objs` (a relist after 410 Gone, a
   * re-read directory). Invalid objects are refused one by one and reported; the valid ones apply.
   */
  replaceAll(kinds: string[], objs: KubeObject[], source: string): { refused: { ref: ObjectRef; error: Error }[] };
}

export interface Source {
  start(sink: ObjectSink): Promise<void>;
  stop(): Promise<void>;
}
