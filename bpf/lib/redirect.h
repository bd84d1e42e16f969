/* The decision connect4 and connect6 share: is this connect() one Weft must steer to the node proxy? */
#pragma once

#include "maps.h"
#include "counters.h"

/* Loop avoidance.
 *
 * The node proxy opens its own upstream connections to the very destinations the mesh captures
 * (service VIPs, pod IPs). Rewriting those would send the proxy back to itself forever. Two independent
 * checks make sure it never happens:
 *
 *  1. The network namespace. The proxy runs in the node's (host) network namespace; pods never do
 *     (host-network pods are not meshed). The agent stores the host netns cookie in weft_config and any
 *     socket created in that namespace is left alone. This holds even if the proxy's cgroup is, by
 *     mistake, enrolled, and needs no cooperation from the proxy.
 *  2. SO_MARK 0x539. The proxy marks its upstream sockets; a marked socket is never rewritten. This covers
 *     a proxy that runs outside the host namespace (a test, a future per-pod mode).
 *
 * Either check alone is enough; both are cheap (one helper call, one field read).
 */
static __always_inline int weft_is_proxy_socket(struct bpf_sock_addr *ctx, const struct weft_config *cfg)
{
	if (cfg->host_netns_cookie != 0 && bpf_get_netns_cookie(ctx) == cfg->host_netns_cookie)
		return 1;
	if (cfg->proxy_mark != 0) {
		struct bpf_sock *sk = ctx->sk;
		if (sk && sk->mark == cfg->proxy_mark)
			return 1;
	}
	return 0;
}

/* A destination is captured when (address, port) or (address, any port) is in weft_dests. */
static __always_inline int weft_is_mesh_dest(__u32 family, const __u32 addr[4], __u16 port)
{
	struct weft_dest key = {};
	key.family = family;
	key.port = port;
	key.addr[0] = addr[0];
	key.addr[1] = addr[1];
	key.addr[2] = addr[2];
	key.addr[3] = addr[3];
	if (bpf_map_lookup_elem(&weft_dests, &key))
		return 1;
	key.port = 0;
	return bpf_map_lookup_elem(&weft_dests, &key) != 0;
}

/* Common gate: a stream socket of an enrolled pod, not the proxy's own, with capture configured.
 * Returns the config to rewrite with, or NULL to pass the connect untouched. *cgroup_id is set. */
static __always_inline struct weft_config *weft_capture_gate(struct bpf_sock_addr *ctx, __u64 *cgroup_id)
{
	if (ctx->type != WEFT_SOCK_STREAM)
		return 0;
	__u64 cg = bpf_get_current_cgroup_id();
	struct weft_pod *pod = bpf_map_lookup_elem(&weft_pods, &cg);
	if (!pod)
		return 0;
	struct weft_config *cfg = weft_get_config();
	if (!cfg || cfg->proxy_port == 0)
		return 0;
	if (weft_is_proxy_socket(ctx, cfg)) {
		weft_count(WEFT_CNT_LOOP_SKIP);
		return 0;
	}
	*cgroup_id = cg;
	return cfg;
}

#define WEFT_FAIL_NONE 0   /* the proxy is serving: redirect */
#define WEFT_FAIL_DIRECT 1 /* not serving, the pod fails open: leave the connect untouched */
#define WEFT_FAIL_REFUSE 2 /* not serving, the pod fails closed: refuse the connect (EPERM) */

/* What to do with a captured connect of the pod in cgroup `cg` (counted here when not a redirect). */
static __always_inline int weft_fail_verdict(__u64 cg)
{
	if (weft_proxy_serving())
		return WEFT_FAIL_NONE;
	struct weft_pod *pod = bpf_map_lookup_elem(&weft_pods, &cg);
	if (pod && weft_pod_fails_open(pod)) {
		weft_count(WEFT_CNT_FAIL_OPEN);
		return WEFT_FAIL_DIRECT;
	}
	weft_count(WEFT_CNT_FAIL_CLOSED);
	return WEFT_FAIL_REFUSE;
}

/* Remember where the socket meant to go, by socket cookie; sockops re-keys it once established. */
static __always_inline int weft_record(struct bpf_sock_addr *ctx, __u32 family, const __u32 addr[4], __u16 port,
				       __u64 cgroup_id)
{
	struct weft_orig orig = {};
	orig.addr[0] = addr[0];
	orig.addr[1] = addr[1];
	orig.addr[2] = addr[2];
	orig.addr[3] = addr[3];
	orig.port = port;
	orig.family = family;
	orig.cgroup_id = cgroup_id;
	orig.created_ns = bpf_ktime_get_ns();
	__u64 cookie = bpf_get_socket_cookie(ctx);
	return bpf_map_update_elem(&weft_orig_ck, &cookie, &orig, BPF_ANY);
}
