/* cgroup/connect6: the IPv6 twin of connect4.c.
 *
 * A dual-stack (AF_INET6) socket connecting to an IPv4 service uses a v4-mapped address (::ffff:a.b.c.d);
 * it is matched against the IPv4 destinations and rewritten to the v4-mapped proxy address, so such
 * programs are captured exactly like AF_INET ones. */
#include "lib/redirect.h"

SEC("cgroup/connect6")
int weft_connect6(struct bpf_sock_addr *ctx)
{
	__u64 cgroup_id = 0;
	struct weft_config *cfg = weft_capture_gate(ctx, &cgroup_id);
	if (!cfg)
		return WEFT_ALLOW;

	__u32 ip6[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };
	__u16 port = bpf_ntohs((__u16)ctx->user_port);

	if (weft_is_v4_mapped(ip6)) {
		__u32 addr[4] = { ip6[3], 0, 0, 0 };
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
		if (weft_record(ctx, WEFT_FAMILY_V4, addr, port, cgroup_id) != 0) {
			weft_count(WEFT_CNT_PASSED);
			return WEFT_ALLOW;
		}
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
		ctx->user_ip6[3] = cfg->proxy_ip4;
		ctx->user_port = bpf_htons(cfg->proxy_port);
		weft_count(WEFT_CNT_REDIRECTED);
		return WEFT_ALLOW;
	}

	int v6_on = cfg->proxy_ip6[0] | cfg->proxy_ip6[1] | cfg->proxy_ip6[2] | cfg->proxy_ip6[3];
	if (!weft_is_mesh_dest(WEFT_FAMILY_V6, ip6, port) || !v6_on) {
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
	if (weft_record(ctx, WEFT_FAMILY_V6, ip6, port, cgroup_id) != 0) {
		weft_count(WEFT_CNT_PASSED);
		return WEFT_ALLOW;
	}
	ctx->user_ip6[0] = cfg->proxy_ip6[0];
	ctx->user_ip6[1] = cfg->proxy_ip6[1];
	ctx->user_ip6[2] = cfg->proxy_ip6[2];
	ctx->user_ip6[3] = cfg->proxy_ip6[3];
	ctx->user_port = bpf_htons(cfg->proxy_port);
	weft_count(WEFT_CNT_REDIRECTED);
	return WEFT_ALLOW;
}

char _license[] SEC("license") = "GPL";
