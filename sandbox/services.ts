// Services for every pod, meshed or not, the way kube-proxy provides them on a cluster: DNAT from each
// ClusterIP:port to the service's endpoints, in every node's netns (PREROUTING for its pods, OUTPUT for
// the node itself). A meshed pod's connection never reaches these rules: eBPF connect4 has already
// rewritten it to the node proxy. Names resolve through a per-pod /etc/hosts (bind-mounted in the pod's
// mount namespace) listing `<svc>.<ns>.svc.cluster.local`, `<svc>.<ns>.svc`, `<svc>.<ns>` and, for the
// pod's own namespace, `<svc>`.
import { writeFileSync } from 'node:fs';

import { inNetns } from './host/run.js';
import { type NodePlan, type Plan, type PodPlan, portKey } from './plan.js';

export const CLUSTER_DOMAIN = 'cluster.local';

/** iptables-restore input for one node: the nat and filter tables of that node's netns (ours alone). */
export function serviceRules(plan: Plan): string {
  const chains: string[] = [':WEFT-SERVICES - [0:0]'];
  const rules: string[] = ['-A PREROUTING -j WEFT-SERVICES', '-A OUTPUT -j WEFT-SERVICES'];
  const rejects: string[] = [];
  let n = 0;
  for (const s of plan.services) {
    if (!s.clusterIP) continue; // headless: names resolve to the pods themselves
    for (const p of s.ports) {
      const proto = p.protocol.toLowerCase();
      const match = `-d ${s.clusterIP}/32 -p ${proto} --dport ${p.port}`;
      const eps = s.endpoints.filter((e) => e.ports[portKey(p)] !== undefined);
      if (eps.length === 0) {
        // as kube-proxy does: a service without endpoints refuses instead of timing out
        rejects.push(`-A FORWARD ${match} -j REJECT --reject-with icmp-port-unreachable`, `-A OUTPUT ${match} -j REJECT --reject-with icmp-port-unreachable`);
        continue;
      }
      const chain = `WEFT-SVC-${++n}`;
      chains.push(`:${chain} - [0:0]`);
      rules.push(`-A WEFT-SERVICES ${match} -j ${chain}`);
      eps.forEach((e, i) => {
        const left = eps.length - i;
        const pick = left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(6)}` : '';
        rules.push(`-A ${chain} -p ${proto}${pick} -j DNAT --to-destination ${e.ip}:${e.ports[portKey(p)]}`);
      });
    }
  }
  return [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ...chains,
    ...rules,
    'COMMIT',
    '*filter',
    ':INPUT ACCEPT [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ...rejects,
    'COMMIT',
    '',
  ].join('\n');
}

export async function applyServiceRules(node: NodePlan, rules: string): Promise<void> {
  await inNetns(node.netns, ['iptables-restore'], { input: rules });
}

/** The names a pod in `podNamespace` can use for a service. */
export function serviceNames(namespace: string, name: string, podNamespace: string): string[] {
  const names = [`${name}.${namespace}.svc.${CLUSTER_DOMAIN}`, `${name}.${namespace}.svc`, `${name}.${namespace}`];
  if (namespace === podNamespace) names.push(name);
  return names;
}

export function hostsFile(plan: Plan, pod: PodPlan): string {
  const lines = [
    '# Kubernetes-managed hosts file, written by weft sandbox: service names resolve here (there is no DNS server).',
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    `${pod.ip}\t${pod.name}`,
  ];
  for (const s of plan.services) {
    const names = serviceNames(s.namespace, s.name, pod.namespace).join(' ');
    if (s.clusterIP) lines.push(`${s.clusterIP}\t${names}`);
    else for (const e of s.endpoints) lines.push(`${e.ip}\t${names}`);
  }
  return lines.join('\n') + '\n';
}

export function resolvConf(namespace: string): string {
  return [
    '# written by weft sandbox: service names resolve from /etc/hosts; the nameserver refuses at once.',
    `search ${namespace}.svc.${CLUSTER_DOMAIN} svc.${CLUSTER_DOMAIN} ${CLUSTER_DOMAIN}`,
    'nameserver 127.0.0.1',
    'options ndots:5 attempts:1 timeout:1',
    '',
  ].join('\n');
}

export function writeNameFiles(plan: Plan, pod: PodPlan): void {
  writeFileSync(pod.hostsFile, hostsFile(plan, pod));
  writeFileSync(pod.resolvFile, resolvConf(pod.namespace));
}
