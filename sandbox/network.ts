// The sandbox's network, all of it inside network namespaces it creates: an underlay netns with one
// bridge linking the nodes and the controller; per node a netns with an underlay address, a bridge for
// its pods, routes to the other nodes' pod ranges, and no default route; per pod a netns with one veth
// on its node's bridge. No link or route is ever added to the root namespace: veths are created inside
// the underlay or node namespace with their peer placed straight into the other namespace.
import type { NodePlan, Plan, PodPlan } from './plan.js';
import { inNetns, ipBatch, parallel } from './host/run.js';

const PREFIX_LEN_UNDERLAY = 24;

/** Root-namespace batch: create the named netns files (no links, no routes). */
export async function addNetns(names: string[]): Promise<void> {
  await ipBatch(undefined, names.map((n) => `netns add ${n}`));
}

export async function buildUnderlay(plan: Plan): Promise<void> {
  const ul = plan.underlay;
  const c = plan.controller;
  await ipBatch(ul.netns, [
    'link set lo up',
    `link add ${ul.bridge} type bridge`,
    `link set ${ul.bridge} up`,
    // one veth per node and one for the controller; the peer lands in its namespace as eth0
    ...plan.nodes.flatMap((n) => [`link add ${n.underlayPort} type veth peer name eth0 netns ${n.netns}`, `link set ${n.underlayPort} master ${ul.bridge} up`]),
    `link add ${c.underlayPort} type veth peer name eth0 netns ${c.netns}`,
    `link set ${c.underlayPort} master ${ul.bridge} up`,
  ]);
  await ipBatch(c.netns, ['link set lo up', `addr add ${c.ip}/${PREFIX_LEN_UNDERLAY} dev eth0`, 'link set eth0 up']);
}

export async function buildNode(plan: Plan, node: NodePlan): Promise<void> {
  // Forwarding between the pod bridge and the underlay; no ICMP redirects, because pods reach each other
  // through the node (they hold /32 addresses), so the node's DNAT also sees same-node replies.
  await inNetns(node.netns, [
    'sysctl', '-qw',
    'net.ipv4.ip_forward=1',
    'net.ipv4.conf.all.send_redirects=0',
    'net.ipv4.conf.default.send_redirects=0',
    'net.ipv4.conf.all.rp_filter=0',
    'net.ipv4.conf.default.rp_filter=0',
  ]);
  await ipBatch(node.netns, [
    'link set lo up',
    `addr add ${node.ip}/${PREFIX_LEN_UNDERLAY} dev eth0`,
    'link set eth0 up',
    `link add ${node.bridge} type bridge`,
    `addr add ${node.gateway}/24 dev ${node.bridge}`,
    `link set ${node.bridge} up`,
    ...plan.nodes.filter((o) => o.name !== node.name).map((o) => `route add ${o.podCIDR} via ${o.ip} dev eth0`),
  ]);
}

/** One veth per pod on the node's bridge, then each pod's address and routes (via the node only). */
export async function buildPodLinks(node: NodePlan, pods: PodPlan[], concurrency: number): Promise<void> {
  await ipBatch(node.netns, pods.flatMap((p) => [`link add ${p.hostVeth} type veth peer name eth0 netns ${p.netns}`, `link set ${p.hostVeth} master ${node.bridge} up`]));
  await parallel(pods, concurrency, async (p) => {
    await ipBatch(p.netns, [
      'link set lo up',
      `addr add ${p.ip}/32 dev eth0`,
      'link set eth0 up',
      `route add ${node.gateway} dev eth0 scope link`,
      `route add default via ${node.gateway} dev eth0`,
    ]);
  });
}

/** Best effort: delete netns files (their links go with them). Missing ones are fine. */
export async function deleteNetns(names: string[]): Promise<void> {
  await ipBatch(undefined, names.map((n) => `netns del ${n}`), { allowFail: true });
}
