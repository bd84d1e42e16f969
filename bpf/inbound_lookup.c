/* sk_lookup, attached to each enrolled pod's network namespace: inbound capture.
 *
 * Why: a meshed pod's callers in the mesh reach it through the node proxy (same node: outbound capture;
 * other nodes: the mTLS tunnel), where authorization, rate limits and metrics apply. A caller outside the
 * mesh (a pod that is not enrolled, a pod on a node without Weft) connects straight to the pod's address.
 * In PERMISSIVE mode that is allowed, but it must still meet the destination's policy: ambient's ztunnel
 * takes such connections on its inbound plaintext port for the same reason.
 *
 * How: for a new TCP connection (the SYN's listener lookup; established connections never come here) to a
 * pod address in weft_in_pods, the socket of the proxy's inbound plaintext listener in this namespace
 * (weft_in_socks) is selected instead of the pod's own. Nothing is rewritten: the proxy's accepted socket
 * has the caller as peer and the pod's address and port as local address, which is the original
 * destination. The proxy then connects to the pod itself, from the caller's address, and registers that
 * SYN in weft_proxy_syn, so it passes here.
 *
 * Not steered:
 *  - connections the node proxy opens (weft_proxy_syn): its delivery of checked traffic;
 *  - loopback sources (the pod talking to itself);
 *  - sources that are the node's own addresses (weft_guard_src): processes of the node (kubelet probes,
 *    hostNetwork pods), which ambient exempts as well and which the STRICT guard also admits;
 *  - ports whose mode is STRICT: the plaintext connection goes to the pod's socket, where the inbound
 *    guard (inbound_guard.c) drops its SYN.
 * A pod in weft_in_pods whose listener is gone or whose proxy is not serving (weft_alive) follows its fail
 * mode: closed (default) is refused (SK_DROP fails the lookup, the kernel answers the SYN with a reset),
 * open goes to the pod directly, as its outbound connections then do.
 */
#include "lib/maps.h"
#include "lib/counters.h"

#define WEFT_IPPROTO_TCP 6

static __always_inline __u32 weft_lookup_mode(__u64 cg, __u32 port)
{
	struct weft_pod *pod = bpf_map_lookup_elem(&weft_pods, &cg);
	if (!pod)
		return WEFT_MODE_DISABLE;
	if (!(pod->flags & WEFT_POD_PORT_MODES))
		return pod->mode;
	struct weft_pod_port key = {};
	key.cgroup_id = cg;
	key.port = port;
	__u32 *m = bpf_map_lookup_elem(&weft_pod_ports, &key);
	return m ? *m : pod->mode;
}

SEC("sk_lookup")
int weft_inbound_lookup(struct bpf_sk_lookup *ctx)
{
	if (ctx->protocol != WEFT_IPPROTO_TCP)
		return SK_PASS;

	struct weft_addr pod = {};
	struct weft_addr src = {};
	struct weft_tuple t = {};
	if (ctx->family == WEFT_AF_INET) {
		if ((bpf_ntohl(ctx->remote_ip4) >> 24) == 127)
			return SK_PASS;
		pod.family = WEFT_FAMILY_V4;
		pod.addr[0] = ctx->local_ip4;
		src.family = WEFT_FAMILY_V4;
		src.addr[0] = ctx->remote_ip4;
	} else if (ctx->family == WEFT_AF_INET6) {
		if (ctx->remote_ip6[0] == 0 && ctx->remote_ip6[1] == 0 && ctx->remote_ip6[2] == 0 && ctx->remote_ip6[3] == bpf_htonl(1))
			return SK_PASS; /* ::1 */
		pod.family = WEFT_FAMILY_V6;
		src.family = WEFT_FAMILY_V6;
		pod.addr[0] = ctx->local_ip6[0];
		pod.addr[1] = ctx->local_ip6[1];
		pod.addr[2] = ctx->local_ip6[2];
		pod.addr[3] = ctx->local_ip6[3];
		src.addr[0] = ctx->remote_ip6[0];
		src.addr[1] = ctx->remote_ip6[1];
		src.addr[2] = ctx->remote_ip6[2];
		src.addr[3] = ctx->remote_ip6[3];
	} else {
		return SK_PASS;
	}

	__u64 *cg = bpf_map_lookup_elem(&weft_in_pods, &pod);
	if (!cg)
		return SK_PASS;

	t.family = pod.family;
	t.peer[0] = src.addr[0];
	t.peer[1] = src.addr[1];
	t.peer[2] = src.addr[2];
	t.peer[3] = src.addr[3];
	t.local[0] = pod.addr[0];
	t.local[1] = pod.addr[1];
	t.local[2] = pod.addr[2];
	t.local[3] = pod.addr[3];
	t.peer_port = bpf_ntohs(ctx->remote_port);
	t.local_port = (__u16)ctx->local_port;
	if (bpf_map_lookup_elem(&weft_proxy_syn, &t))
		return SK_PASS;
	if (bpf_map_lookup_elem(&weft_guard_src, &src))
		return SK_PASS;
	if (weft_lookup_mode(*cg, t.local_port) == WEFT_MODE_STRICT)
		return SK_PASS;

	/* The proxy is not serving (its listener gone, or its heartbeat stale): the pod's fail mode decides. */
	struct bpf_sock *sk = weft_proxy_serving() ? bpf_map_lookup_elem(&weft_in_socks, &pod) : 0;
	if (!sk) {
		struct weft_pod *p = bpf_map_lookup_elem(&weft_pods, cg);
		if (p && weft_pod_fails_open(p))
			return SK_PASS;
		weft_count(WEFT_CNT_IN_NO_SOCK);
		return SK_DROP;
	}
	long err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	if (err != 0) {
		weft_count(WEFT_CNT_IN_NO_SOCK);
		return SK_DROP;
	}
	weft_count(WEFT_CNT_IN_STEERED);
	return SK_PASS;
}

char _license[] SEC("license") = "GPL";
