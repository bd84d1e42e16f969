/* sockops: hand each redirected connection's record to the proxy, and forget it when the connection ends.
 *
 * connect4/6 can only key a record by socket cookie: at connect() time the source port is not chosen yet.
 * The proxy, on the other side, only knows the accepted socket's 4-tuple. So:
 *
 *   TCP_CONNECT_CB         the socket has a record: ask for state callbacks, so its end is seen too
 *   ACTIVE_ESTABLISHED_CB  the 4-tuple is final: move the record to weft_orig_tup (as the proxy sees the
 *                          tuple: peer = our local end, local = our remote end)
 *   STATE_CB -> CLOSE      delete the cookie record (a connect that never reached established), and
 *                          stamp closed_ns on the tuple record
 *
 * The tuple record is not deleted on close: the proxy consumes it (lookup-and-delete) when it accepts, and
 * a fast client may be closed before that happens (see maps.h). Closed records the proxy never consumed
 * are deleted by the agent's sweep after a grace period; both maps are LRU as the last line.
 */
#include "lib/maps.h"
#include "lib/counters.h"

#define WEFT_TCP_CLOSE 7 /* BPF_TCP_CLOSE */

/* Fill the tuple as the proxy's accepted socket sees it. Returns 0 if the family is not TCP/IP. */
static __always_inline int weft_tuple_of(struct bpf_sock_ops *skops, struct weft_tuple *t)
{
	if (skops->family == WEFT_AF_INET) {
		t->family = WEFT_FAMILY_V4;
		t->peer[0] = skops->local_ip4;
		t->local[0] = skops->remote_ip4;
	} else if (skops->family == WEFT_AF_INET6) {
		__u32 l[4] = { skops->local_ip6[0], skops->local_ip6[1], skops->local_ip6[2], skops->local_ip6[3] };
		__u32 r[4] = { skops->remote_ip6[0], skops->remote_ip6[1], skops->remote_ip6[2], skops->remote_ip6[3] };
		if (weft_is_v4_mapped(r)) {
			/* a dual-stack socket redirected to the v4-mapped proxy address: the proxy sees IPv4 */
			t->family = WEFT_FAMILY_V4;
			t->peer[0] = l[3];
			t->local[0] = r[3];
		} else {
			t->family = WEFT_FAMILY_V6;
			t->peer[0] = l[0];
			t->peer[1] = l[1];
			t->peer[2] = l[2];
			t->peer[3] = l[3];
			t->local[0] = r[0];
			t->local[1] = r[1];
			t->local[2] = r[2];
			t->local[3] = r[3];
		}
	} else {
		return 0;
	}
	t->peer_port = (__u16)skops->local_port;              /* host order already */
	t->local_port = (__u16)bpf_ntohl(skops->remote_port); /* network order, in the upper half on LE */
	return 1;
}

static __always_inline int weft_is_proxy_dest(const struct weft_tuple *t, const struct weft_config *cfg)
{
	if (t->local_port != cfg->proxy_port)
		return 0;
	if (t->family == WEFT_FAMILY_V4)
		return t->local[0] == cfg->proxy_ip4;
	return t->local[0] == cfg->proxy_ip6[0] && t->local[1] == cfg->proxy_ip6[1] &&
	       t->local[2] == cfg->proxy_ip6[2] && t->local[3] == cfg->proxy_ip6[3];
}

SEC("sockops")
int weft_sockops(struct bpf_sock_ops *skops)
{
	__u32 op = skops->op;
	__u64 cookie;

	switch (op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		cookie = bpf_get_socket_cookie(skops);
		if (bpf_map_lookup_elem(&weft_orig_ck, &cookie))
			bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
		break;

	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB: {
		struct weft_tuple t = {};
		if (!weft_tuple_of(skops, &t))
			break;
		cookie = bpf_get_socket_cookie(skops);
		struct weft_orig *orig = bpf_map_lookup_elem(&weft_orig_ck, &cookie);
		if (!orig) {
			struct weft_config *cfg = weft_get_config();
			if (cfg && cfg->proxy_port != 0 && weft_is_proxy_dest(&t, cfg))
				weft_count(WEFT_CNT_LOOKUP_MISS);
			break;
		}
		struct weft_orig copy = *orig;
		bpf_map_update_elem(&weft_orig_tup, &t, &copy, BPF_ANY);
		bpf_map_delete_elem(&weft_orig_ck, &cookie);
		break;
	}

	case BPF_SOCK_OPS_STATE_CB: {
		if (skops->args[1] != WEFT_TCP_CLOSE)
			break;
		cookie = bpf_get_socket_cookie(skops);
		int gone = bpf_map_delete_elem(&weft_orig_ck, &cookie) == 0;
		struct weft_tuple t = {};
		if (weft_tuple_of(skops, &t)) {
			struct weft_orig *orig = bpf_map_lookup_elem(&weft_orig_tup, &t);
			if (orig && orig->closed_ns == 0) {
				orig->closed_ns = bpf_ktime_get_ns();
				gone = 1;
			}
		}
		if (gone)
			weft_count(WEFT_CNT_CLOSED);
		break;
	}
	}
	return WEFT_ALLOW;
}

char _license[] SEC("license") = "GPL";
