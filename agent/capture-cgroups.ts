// Where capture attaches and how it finds each pod's cgroup, for either layout of `--cgroup-layout`:
// the sandbox's own subtree, or a Kubernetes node's kubepods tree (agent/kubernetes/kubernetes-node.ts,
// which also watches this node's pods). On Kubernetes a pod starting (its cgroup now exists) or a namespace
// being labelled calls `resync` at once, so capture does not wait for the next config or retry pass.
import type { Logger } from '../common/log.js';
import type { KubernetesNodeOptions } from './kubernetes/kubernetes-node.js';
import { SandboxCgroupResolver, type CgroupResolver } from './redirect/cgroup-resolver.js';

export interface CaptureCgroups {
  resolver: CgroupResolver;
  /** capture's attach point (RedirectManager cgroupRoot): never the machine's root cgroup */
  attachAt: string;
  close(): Promise<void>;
}

export interface CaptureCgroupsOptions {
  layout: 'sandbox' | 'kubepods';
  cgroupRoot: string | undefined;
  /** this node's name (--node, or NODE_NAME) */
  node: string;
  env: Readonly<Record<string, string | undefined>>;
  logger: Logger;
  /** re-apply the last config now (CaptureSync.resync); bound late, capture-sync is built after this */
  resync: () => void;
  /** tests: the pod and namespace watches, /proc/mounts text */
  informers?: KubernetesNodeOptions['informers'];
  procMounts?: string;
}

export async function openCaptureCgroups(opts: CaptureCgroupsOptions): Promise<CaptureCgroups> {
  if (opts.layout === 'sandbox') {
    return { resolver: new SandboxCgroupResolver(opts.cgroupRoot!), attachAt: opts.cgroupRoot!, close: async () => {} };
  }
  const { openKubernetesNode } = await import('./kubernetes/kubernetes-node.js');
  const node = await openKubernetesNode({
    env: opts.env,
    nodeFlag: opts.node,
    logger: opts.logger,
    onPodsChanged: opts.resync,
    ...(opts.cgroupRoot !== undefined ? { cgroupRoot: opts.cgroupRoot } : {}),
    ...(opts.informers ? { informers: opts.informers } : {}),
    ...(opts.procMounts !== undefined ? { procMounts: opts.procMounts } : {}),
  });
  return { resolver: node.resolver, attachAt: node.attachCgroup, close: () => node.close() };
}
