// SPDX-License-Identifier: GPL-2.0
/* Mistake: taking the address of an element of a map value before
 * checking the lookup result for NULL.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

struct slots {
	__u64 count[8];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct slots);
} per_queue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} last SEC(".maps");

SEC("xdp")
__rejected("all", "pointer arithmetic on map_value_or_null prohibited")
int count_queue(struct xdp_md *ctx)
{
	__u32 key = ctx->ingress_ifindex;
	struct slots *s = bpf_map_lookup_elem(&per_queue, &key);

	bpf_map_update_elem(&last, &key, &s->count[ctx->rx_queue_index & 7], BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
