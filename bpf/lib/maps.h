/* Every map Weft's programs share, defined once.
 *
 * Each program lives in its own object file, yet they must all see the same maps. Every map is therefore
 * pinned by name (LIBBPF_PIN_BY_NAME): the agent opens each object with the same pin root directory
 * (/sys/fs/bpf/weft/<instance>), the first object creates and pins a map, later objects (and a restarted
 * agent) re-use the pinned one. libbpf refuses to re-use a pinned map whose definition differs, so the
 * definitions below are the single source of truth; agent/redirect/layout.ts mirrors the structs byte for
 * byte (a codec test checks the sizes).
 *
 * Names are at most 15 characters: the kernel keeps 16 bytes including the terminator.
 */
#pragma once

#include "common.h"

/* ---- configuration, written by the agent ------------------------------------------------------ */

struct weft_config {
	__u32 proxy_ip4;         /* node proxy outbound address, network order; 0 = IPv4 capture off */
	__u32 proxy_ip6[4];      /* node proxy outbound address, network order; all 0 = IPv6 capture off */
	__u16 proxy_port;        /* node proxy outbound port, host order (15001) */
	__u16 flags;             /* reserved, 0 */
	__u32 proxy_mark;        /* SO_MARK the proxy puts on its own sockets (0x539); 0 = not checked */
	__u32 reserved;
	__u64 host_netns_cookie; /* netns cookie of the node's (host) network namespace, where the proxy runs */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct weft_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_config SEC(".maps");

/* ---- enrolled pods: cgroup id -> pod ------------------------------------------------------------ */

#define WEFT_MODE_PERMISSIVE 0
#define WEFT_MODE_STRICT 1
#define WEFT_MODE_DISABLE 2

/* weft_pod.flags */
#define WEFT_POD_PORT_MODES 1 /* weft_pod_ports holds per-port modes for this pod (portLevelMtls) */
#define WEFT_POD_FAIL_OPEN 2  /* weft.io/fail-mode: open: while the proxy is not serving, connections go direct */

struct weft_pod {
	__u32 mode;  /* WEFT_MODE_*: drives the inbound guard */
	__u32 flags; /* WEFT_POD_*; 0 = none */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64); /* cgroup v2 id of the pod's cgroup */
	__type(value, struct weft_pod);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_pods SEC(".maps");

/* ---- per-port guard modes: (cgroup id, port) -> WEFT_MODE_* ----------------------------------------
 * PeerAuthentication portLevelMtls: the mode of a pod's port where it differs from the pod's. Only looked
 * up for pods whose weft_pod.flags has WEFT_POD_PORT_MODES, so pods without overrides pay nothing. */
struct weft_pod_port {
	__u64 cgroup_id;
	__u16 port; /* the pod's (target) port, host order */
	__u16 pad;
	__u32 pad2;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct weft_pod_port);
	__type(value, __u32); /* WEFT_MODE_* */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_pod_ports SEC(".maps");

/* ---- mesh destinations: (family, address, port) -> flags --------------------------------------- */

/* An address in network order; IPv4 uses addr[0] only, the rest is zero. */
struct weft_dest {
	__u32 family; /* WEFT_FAMILY_V4 or WEFT_FAMILY_V6 */
	__u16 port;   /* host order; 0 = every port of this address */
	__u16 pad;
	__u32 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct weft_dest);
	__type(value, __u32); /* reserved flags, 0 */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_dests SEC(".maps");

/* ---- original destinations ---------------------------------------------------------------------- */

struct weft_orig {
	__u32 addr[4];    /* original destination, network order (IPv4 in addr[0]) */
	__u16 port;       /* original destination port, host order */
	__u16 family;     /* WEFT_FAMILY_V4 or WEFT_FAMILY_V6 */
	__u32 pad;
	__u64 cgroup_id;  /* cgroup of the connecting socket: the source pod, as the kernel saw it */
	__u64 created_ns; /* bpf_ktime_get_ns() at connect (CLOCK_MONOTONIC) */
	__u64 closed_ns;  /* 0 while the pod's socket is open; set by sockops when it closes */
};

/* Written by connect4/6 when they rewrite, keyed by socket cookie; moved to weft_orig_tup once the
 * connection is established, deleted when a connection that never got established closes. LRU: a record
 * whose socket fails before TCP even starts (no route to the proxy) is evicted, not kept; the agent's
 * sweep removes such records too. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct weft_orig);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_orig_ck SEC(".maps");

/* The 4-tuple as the proxy's accepted socket sees it: peer = the pod's address, local = the proxy's.
 *
 * Who removes a record: normally the proxy, which looks it up AND deletes it (one syscall) when it
 * accepts the connection. Sockops cannot delete it when the pod's socket closes: a client that connects,
 * writes and closes is fully closed one round trip later, possibly before the proxy's accept loop ran.
 * So sockops only stamps closed_ns, and the agent's sweep deletes records closed longer than a grace
 * period (connections the proxy never accepted). LRU bounds the map whatever happens. */
struct weft_tuple {
	__u32 peer[4];
	__u32 local[4];
	__u16 peer_port;  /* host order */
	__u16 local_port; /* host order */
	__u32 family;     /* WEFT_FAMILY_V4 or WEFT_FAMILY_V6 */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct weft_tuple);
	__type(value, struct weft_orig);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_orig_tup SEC(".maps");

/* ---- inbound guard: connections the node proxy is opening to local pods ---------------------------
 * With transparent sources the pod sees the real caller's address, so the guard cannot recognise the
 * proxy's SYN by its source address. The proxy registers each connection it opens to a local pod, as the
 * pod will see it (peer = the source address the proxy bound, local = the pod's address), between bind and
 * connect, and deletes it once connected: only the opening SYN is judged. A pod cannot add entries, so no
 * source address is trusted for this. LRU bounds what a crashing proxy leaves behind. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct weft_tuple);
	__type(value, __u32); /* reserved flags, 0 */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_proxy_syn SEC(".maps");

/* ---- inbound guard: source addresses that count as "the local node proxy" ------------------------ */

struct weft_addr {
	__u32 family; /* WEFT_FAMILY_V4 or WEFT_FAMILY_V6 */
	__u32 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct weft_addr);
	__type(value, __u32); /* reserved flags, 0 */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_guard_src SEC(".maps");

/* ---- inbound capture (sk_lookup): connections to a pod that did not come through the proxy ------------
 * The agent opens a listening socket inside each enrolled pod's network namespace (the proxy's inbound
 * plaintext listener, 15006) and attaches inbound_lookup.c to that namespace. A new TCP connection to the
 * pod's address that the node proxy did not open itself (weft_proxy_syn) is handed to that socket, so a
 * caller outside the mesh meets the destination's policy too. weft_in_pods gives the pod's cgroup (and so
 * its guard mode) by address; weft_in_socks holds the listener. A closed socket leaves the sockhash by
 * itself: while no agent runs, such connections are refused (never let past the policy). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct weft_addr); /* the pod's address */
	__type(value, __u64);          /* cgroup v2 id of the pod */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_in_pods SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 8192);
	__type(key, struct weft_addr); /* the pod's address */
	__type(value, __u64);          /* the listener (an fd on update, its cookie on lookup) */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_in_socks SEC(".maps");

/* ---- fail mode: is the node proxy serving? ---------------------------------------------------------
 * The agent's watchdog writes a deadline (bpf_ktime_get_ns clock, CLOCK_MONOTONIC) a second ahead on every
 * tick; a proxy that stopped ticking (killed, stalled, stopped) is "not serving" once it passes, and a
 * draining agent with no successor writes 1 (a deadline long past). 0 means no heartbeat is kept (capture
 * driven without an agent, e.g. by tests): always serving. While not serving, an enrolled pod's captured
 * connections follow its namespace's fail mode: closed (default) refuses them at connect(), open lets
 * them go direct, unless the pod is STRICT. */
struct weft_alive {
	__u64 deadline_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct weft_alive);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_alive SEC(".maps");

static __always_inline int weft_proxy_serving(void)
{
	__u32 zero = 0;
	struct weft_alive *a = bpf_map_lookup_elem(&weft_alive, &zero);
	if (!a || a->deadline_ns == 0)
		return 1;
	return bpf_ktime_get_ns() < a->deadline_ns;
}

/* While the proxy is not serving: 1 when the pod's connections may go direct (fail open, never STRICT). */
static __always_inline int weft_pod_fails_open(const struct weft_pod *pod)
{
	return (pod->flags & WEFT_POD_FAIL_OPEN) && pod->mode != WEFT_MODE_STRICT;
}

static __always_inline struct weft_config *weft_get_config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&weft_config, &zero);
}
