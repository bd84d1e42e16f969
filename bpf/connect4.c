/* cgroup/connect4: steer an enrolled pod's IPv4 TCP connect() to a mesh destination to the node proxy.
 *
 * Runs in the connecting task's context before the kernel picks a route, so the pod's unmodified program
 * simply ends up connected to the proxy's outbound listener; the original destination and the pod's
 * cgroup id are recorded by socket cookie (see sockops.c for how the proxy finds them). */
#include "lib/redirect.h"

SEC("cgroup/connect4")
int weft_connect4(struct bpf_sock_addr *ctx)
{
	__u64 cgroup_id = 0;
	struct weft_config *cfg = weft_capture_gate(ctx, &cgroup_id);
	if (!cfg)
		return WEFT_ALLOW;

	__u32 addr[4] = { ctx->user_ip4, 0, 0, 0 };
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	if (!weft_is_mesh_dest(WEFT_FAMILY_V4, addr, port) || cfg->proxy_ip4 == 0) {
		weft_count(WEFT_CNT_PASSED);
		return WEFT_ALLOW;
	}
	/* The proxy is not serving: the pod's fail mode decides (go direct, or refuse the connect). */
	switch (weft_fail_verdict(cgroup_id)) {
	case WEFT_FAIL_DIRECT:
		return WEFT_ALLOW;
	case WEFT_FAIL_REFUSE:
		return WEFT_DENY;
	}
	/* Record first: a connection the proxy cannot look up would be refused, so never rewrite without it. */
	if (weft_record(ctx, WEFT_FAMILY_V4, addr, port, cgroup_id) != 0) {
		weft_count(WEFT_CNT_PASSED);
		return WEFT_ALLOW;
	}
	ctx->user_ip4 = cfg->proxy_ip4;
	ctx->user_port = bpf_htons(cfg->proxy_port);
	weft_count(WEFT_CNT_REDIRECTED);
	return WEFT_ALLOW;
}

char _license[] SEC("license") = "GPL";
