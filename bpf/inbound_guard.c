/* cgroup_skb/ingress: in STRICT mode a pod accepts TCP connections only from the local node proxy.
 *
 * Why the SYN and the source address:
 *  - Every legitimate connection to a meshed pod arrives through the local node proxy: peers' proxies
 *    reach it over mTLS on port 15008 and it then connects to the pod itself, from the node proxy
 *    address. A plaintext connection from anywhere else bypassed mTLS and policy, so STRICT refuses it.
 *  - Only the opening SYN (SYN without ACK) is judged. Replies to connections the pod itself opened
 *    (SYN-ACK and later segments) are never inspected, so a STRICT pod can still reach DNS, the API server
 *    or the outside world. Without an accepted SYN no connection exists, so later segments of a refused
 *    connection find no socket anyway.
 *  - "From the local node proxy" means: the connection's 4-tuple is in weft_proxy_syn (the proxy registers
 *    each connection it opens to a local pod, whatever source address it binds: with transparent sources
 *    that is the caller's pod address), or the source address is one of weft_guard_src (the node's own
 *    addresses, where a non-transparent proxy connects from), or loopback (the pod talking to itself).
 *  - IPv6 packets whose TCP header sits behind extension headers are dropped for STRICT pods: the node
 *    proxy never sends them, and skipping them would be a bypass.
 *  - PeerAuthentication portLevelMtls: a pod flagged WEFT_POD_PORT_MODES has per-port modes in
 *    weft_pod_ports (keyed by cgroup id and destination port) that replace its own mode for that port, so
 *    a PERMISSIVE pod can have a STRICT port and a STRICT pod a PERMISSIVE one.
 * A dropped SYN looks like a filtered port to the client (it retries, then times out), which is the
 * behaviour of a firewall rather than an RST that advertises the port.
 */
#include "lib/maps.h"
#include "lib/counters.h"

#define WEFT_ETH_P_IP 0x0800
#define WEFT_ETH_P_IPV6 0x86DD
#define WEFT_IPPROTO_TCP 6
#define WEFT_TCP_FLAG_SYN 0x02
#define WEFT_TCP_FLAG_ACK 0x10

struct weft_ip4_hdr {
	__u8 ver_ihl;
	__u8 tos;
	__u16 tot_len;
	__u16 id;
	__u16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__u16 check;
	__u32 saddr;
	__u32 daddr;
};

struct weft_ip6_hdr {
	__u32 ver_tc_flow;
	__u16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u32 saddr[4];
	__u32 daddr[4];
};

static __always_inline int weft_allowed_source(__u32 family, const __u32 addr[4])
{
	struct weft_addr key = {};
	key.family = family;
	key.addr[0] = addr[0];
	key.addr[1] = addr[1];
	key.addr[2] = addr[2];
	key.addr[3] = addr[3];
	return bpf_map_lookup_elem(&weft_guard_src, &key) != 0;
}

/* 1 when the proxy registered this connection (weft_proxy_syn): peer = source, local = destination. */
static __always_inline int weft_proxy_opened(struct __sk_buff *skb, __u32 family, const __u32 saddr[4], const __u32 daddr[4], __u32 tcp_off)
{
	__u16 ports[2] = {};
	if (bpf_skb_load_bytes(skb, tcp_off, ports, sizeof(ports)) != 0)
		return 0;
	struct weft_tuple key = {};
	key.peer[0] = saddr[0];
	key.peer[1] = saddr[1];
	key.peer[2] = saddr[2];
	key.peer[3] = saddr[3];
	key.local[0] = daddr[0];
	key.local[1] = daddr[1];
	key.local[2] = daddr[2];
	key.local[3] = daddr[3];
	key.peer_port = bpf_ntohs(ports[0]);
	key.local_port = bpf_ntohs(ports[1]);
	key.family = family;
	return bpf_map_lookup_elem(&weft_proxy_syn, &key) != 0;
}

/* 1 when the TCP segment at byte offset `off` is an opening SYN. */
static __always_inline int weft_is_opening_syn(struct __sk_buff *skb, __u32 off)
{
	__u8 flags = 0;
	if (bpf_skb_load_bytes(skb, off + 13, &flags, 1) != 0)
		return 0;
	return (flags & (WEFT_TCP_FLAG_SYN | WEFT_TCP_FLAG_ACK)) == WEFT_TCP_FLAG_SYN;
}

static __always_inline int weft_drop(void)
{
	weft_count(WEFT_CNT_GUARD_DROP);
	return WEFT_DENY;
}

/* The mode for a connection to `port` of the pod: its per-port override, else the pod's own. */
static __always_inline __u32 weft_port_mode(__u64 cg, const struct weft_pod *pod, struct __sk_buff *skb, __u32 tcp_off)
{
	if (!(pod->flags & WEFT_POD_PORT_MODES))
		return pod->mode;
	__u16 dport = 0;
	if (bpf_skb_load_bytes(skb, tcp_off + 2, &dport, sizeof(dport)) != 0)
		return pod->mode;
	struct weft_pod_port key = {};
	key.cgroup_id = cg;
	key.port = bpf_ntohs(dport);
	__u32 *m = bpf_map_lookup_elem(&weft_pod_ports, &key);
	return m ? *m : pod->mode;
}

SEC("cgroup_skb/ingress")
int weft_inbound_guard(struct __sk_buff *skb)
{
	__u64 cg = bpf_skb_cgroup_id(skb);
	struct weft_pod *pod = bpf_map_lookup_elem(&weft_pods, &cg);
	if (!pod)
		return WEFT_ALLOW;
	/* nothing of this pod is STRICT: nothing to check (the common PERMISSIVE case costs one lookup) */
	if (pod->mode != WEFT_MODE_STRICT && !(pod->flags & WEFT_POD_PORT_MODES))
		return WEFT_ALLOW;

	if (skb->protocol == bpf_htons(WEFT_ETH_P_IP)) {
		struct weft_ip4_hdr ip = {};
		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) != 0)
			return WEFT_ALLOW;
		if (ip.protocol != WEFT_IPPROTO_TCP)
			return WEFT_ALLOW;
		__u32 off = (ip.ver_ihl & 0x0f) * 4;
		if (!weft_is_opening_syn(skb, off))
			return WEFT_ALLOW;
		if (weft_port_mode(cg, pod, skb, off) != WEFT_MODE_STRICT)
			return WEFT_ALLOW;
		if ((bpf_ntohl(ip.saddr) >> 24) == 127)
			return WEFT_ALLOW;
		__u32 src[4] = { ip.saddr, 0, 0, 0 };
		__u32 dst[4] = { ip.daddr, 0, 0, 0 };
		if (weft_proxy_opened(skb, WEFT_FAMILY_V4, src, dst, off))
			return WEFT_ALLOW;
		return weft_allowed_source(WEFT_FAMILY_V4, src) ? WEFT_ALLOW : weft_drop();
	}

	if (skb->protocol == bpf_htons(WEFT_ETH_P_IPV6)) {
		struct weft_ip6_hdr ip6 = {};
		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) != 0)
			return WEFT_ALLOW;
		switch (ip6.nexthdr) {
		case WEFT_IPPROTO_TCP:
			break;
		case 0:  /* hop-by-hop options */
		case 43: /* routing */
		case 44: /* fragment */
		case 60: /* destination options */
			/* no port to judge by without walking the chain: drop (the pod, or one of its ports, is
			 * STRICT, and the node proxy never sends these) */
			return weft_drop();
		default:
			return WEFT_ALLOW; /* ICMPv6, UDP, ...: not plaintext TCP */
		}
		if (!weft_is_opening_syn(skb, sizeof(ip6)))
			return WEFT_ALLOW;
		if (weft_port_mode(cg, pod, skb, sizeof(ip6)) != WEFT_MODE_STRICT)
			return WEFT_ALLOW;
		if (ip6.saddr[0] == 0 && ip6.saddr[1] == 0 && ip6.saddr[2] == 0 && ip6.saddr[3] == bpf_htonl(1))
			return WEFT_ALLOW; /* ::1 */
		if (weft_proxy_opened(skb, WEFT_FAMILY_V6, ip6.saddr, ip6.daddr, sizeof(ip6)))
			return WEFT_ALLOW;
		return weft_allowed_source(WEFT_FAMILY_V6, ip6.saddr) ? WEFT_ALLOW : weft_drop();
	}
	return WEFT_ALLOW;
}

char _license[] SEC("license") = "GPL";
