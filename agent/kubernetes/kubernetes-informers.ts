// The real watches behind NodePodSource: @kubernetes/client-node ListWatch informers for the pods on one
// node and for namespaces. Kept apart from the source so its logic is tested without an API server.
import { CoreV1Api, KubeConfig, ListWatch, Watch, type V1Namespace, type V1Pod } from '@kubernetes/client-node';

import type { NamespaceLike, PodLike } from './enrollment-policy.js';
import type { WatchedCollection } from './node-pod-source.js';

/** In a pod: the service account token and CA the kubelet mounts; elsewhere: ~/.kube/config or KUBECONFIG. */
export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}

export function nodePodInformers(kc: KubeConfig, nodeName: string): { pods: WatchedCollection<PodLike>; namespaces: WatchedCollection<NamespaceLike> } {
  const core = kc.makeApiClient(CoreV1Api);
  // RBAC cannot restrict a list to one node, so the field selector is what keeps the agent's view (and the
  // API server's work) to this node's pods.
  const fieldSelector = `spec.nodeName=${nodeName}`;
  const watch = new Watch(kc);
  const pods = new ListWatch<V1Pod>('/api/v1/pods', watch, () => core.listPodForAllNamespaces({ fieldSelector }), false, undefined, fieldSelector);
  const namespaces = new ListWatch<V1Namespace>('/api/v1/namespaces', watch, () => core.listNamespace(), false);
  return { pods: pods as unknown as WatchedCollection<PodLike>, namespaces: namespaces as unknown as WatchedCollection<NamespaceLike> };
}
