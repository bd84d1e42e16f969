// The Kubernetes side of an agent started with `--cgroup-layout kubepods`, built in one call for
// agent/main.ts: which node this is (downward API), where its pods' cgroups are (kubepods, either cgroup
// driver; a cgroup-v1-only node is refused here, before anything is attached), and a watch of the meshed
// pods on this node. Capture keeps computing what to enroll from the MeshConfig (desiredFromMesh) with
// `resolver`; the pod watch tells main.ts when to reconcile again (a pod started, so its cgroup may now
// exist; a namespace was labelled) and gives the resolver each pod's QoS class.
import type { Logger } from '../../common/log.js';
import { WEFT_SYSTEM_NAMESPACE, type NamespaceLike, type PodLike } from './enrollment-policy.js';
import { openKubepods, type KubepodsCgroupResolver } from './kubepods-resolver.js';
import { resolveNodeName } from './node-name.js';
import { NodePodSource, type WatchedCollection } from './node-pod-source.js';

export interface KubernetesNodeOptions {
  /** the process environment (NODE_NAME); passed in, never read from process.env here */
  env: Readonly<Record<string, string | undefined>>;
  /** the --node flag, if given */
  nodeFlag?: string;
  /** the --cgroup-root flag: the node's cgroup tree as mounted in the agent (the DaemonSet: /sys/fs/cgroup) */
  cgroupRoot?: string;
  /** text of /proc/mounts (tests); read from the file when omitted */
  procMounts?: string;
  logger: Logger;
  /** called when a meshed pod on this node appeared, changed or went away: time to reconcile capture */
  onPodsChanged: () => void;
  /** the watches; default: pods on this node and namespaces from the API server (in-cluster config) */
  informers?: { pods: WatchedCollection<PodLike>; namespaces: WatchedCollection<NamespaceLike> };
  systemNamespace?: string;
}

export interface KubernetesNode {
  nodeName: string;
  /** capture's CgroupResolver for this node (pass to desiredFromMesh) */
  resolver: KubepodsCgroupResolver;
  /** where capture attaches (RedirectManager cgroupRoot): the kubepods cgroup, never the root cgroup */
  attachCgroup: string;
  pods: NodePodSource;
  close(): Promise<void>;
}

export async function openKubernetesNode(opts: KubernetesNodeOptions): Promise<KubernetesNode> {
  const log = opts.logger.child('kubernetes');
  const nodeName = resolveNodeName(opts.env, opts.nodeFlag);
  let pods: NodePodSource | undefined;
  const resolver = openKubepods({
    ...(opts.cgroupRoot !== undefined ? { cgroupRoot: opts.cgroupRoot } : {}),
    ...(opts.procMounts !== undefined ? { procMounts: opts.procMounts } : {}),
    qosOf: (uid) => pods?.qosOf(uid),
  });
  log.info('kubepods cgroup found', { node: nodeName, driver: resolver.layout.driver, kubepods: resolver.layout.kubepodsDir });
  let informers = opts.informers;
  if (!informers) {
    const { loadKubeConfig, nodePodInformers } = await import('./kubernetes-informers.js');
    informers = nodePodInformers(loadKubeConfig(), nodeName);
  }
  pods = new NodePodSource({
    nodeName,
    systemNamespace: opts.systemNamespace ?? WEFT_SYSTEM_NAMESPACE,
    pods: informers.pods,
    namespaces: informers.namespaces,
    sink: { enroll: () => opts.onPodsChanged(), unenroll: () => opts.onPodsChanged() },
    logger: log,
  });
  await pods.start();
  const source = pods;
  return { nodeName, resolver, attachCgroup: resolver.layout.kubepodsDir, pods: source, close: () => source.stop() };
}
