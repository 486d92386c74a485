// SPDX-License-Identifier: GPL-2.0
/* Mistake: a 4-byte store at an odd offset into a byte buffer on the
 * stack. Stack accesses must be aligned to their size.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u8[8]);
	__type(value, __u32);
} by_tag SEC(".maps");

SEC("xdp")
__rejected("all", "misaligned stack access off")
int tag(struct xdp_md *ctx)
{
	__u8 key[8] = {};

	key[0] = 1;
	*(__u32 *)(key + 1) = ctx->ingress_ifindex;
	bpf_map_update_elem(&by_tag, key, &ctx->rx_queue_index, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
