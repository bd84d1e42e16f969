/* Shared includes and constants for every Weft eBPF program.
 *
 * The programs include only kernel UAPI headers and libbpf's helper headers, never libc: BPF objects are
 * built with `-target bpf`, where libc's headers do not apply. Socket constants are therefore spelled
 * out here.
 */
#pragma once

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define WEFT_AF_INET 2
#define WEFT_AF_INET6 10
#define WEFT_SOCK_STREAM 1
#define WEFT_SOL_SOCKET 1
#define WEFT_SO_MARK 36

/* Verdicts of cgroup programs: named so a reader never wonders what `return 1` means. */
#define WEFT_ALLOW 1
#define WEFT_DENY 0

/* Address family as stored in Weft's maps: 4 or 6 (not AF_*), the same numbers the proxy uses. */
#define WEFT_FAMILY_V4 4
#define WEFT_FAMILY_V6 6

static __always_inline int weft_is_v4_mapped(const __u32 ip6[4])
{
	return ip6[0] == 0 && ip6[1] == 0 && ip6[2] == bpf_htonl(0x0000ffff);
}
