/* Per-CPU event counters, summed by the agent for its weft_* metrics. Per-CPU so the hot path never
 * contends on a shared cache line; the index order is mirrored in agent/redirect/layout.ts. */
#pragma once

#include "maps.h"

enum weft_counter {
	WEFT_CNT_REDIRECTED = 0, /* connect rewritten to the node proxy */
	WEFT_CNT_PASSED = 1,     /* connect of an enrolled pod left untouched (not a mesh destination) */
	WEFT_CNT_GUARD_DROP = 2, /* plaintext TCP SYN to a STRICT pod dropped by the inbound guard */
	WEFT_CNT_LOOKUP_MISS = 3,/* established connection to the proxy's outbound port without a record */
	WEFT_CNT_LOOP_SKIP = 4,  /* connect skipped because the socket is the proxy's own */
	WEFT_CNT_CLOSED = 5,     /* connections with a record that closed (cookie record deleted or tuple record stamped) */
	WEFT_CNT_IN_STEERED = 6, /* connection to a pod from outside the proxy handed to the proxy's inbound listener */
	WEFT_CNT_IN_NO_SOCK = 7, /* such a connection to a pod with no inbound listener (agent down): refused */
	WEFT_CNT_FAIL_CLOSED = 8,/* captured connect refused: the proxy is not serving and the pod fails closed */
	WEFT_CNT_FAIL_OPEN = 9,  /* captured connect let go direct: the proxy is not serving and the pod fails open */
	WEFT_CNT_MAX = 16,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WEFT_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_counters SEC(".maps");

static __always_inline void weft_count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&weft_counters, &which);
	if (v)
		*v += 1; /* per-CPU slot: no other CPU writes it, no atomic needed */
}
