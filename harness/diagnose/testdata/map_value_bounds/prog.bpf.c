// SPDX-License-Identifier: GPL-2.0
/* Mistake: an off-by-one bounds check (> instead of >=) lets the index reach
 * one past the end of the array in the map value. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define QUEUES 16

struct queue_stats {
	__u64 packets[QUEUES];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct queue_stats);
} stats SEC(".maps");

SEC("xdp")
int count_per_queue(struct xdp_md *ctx)
{
	__u32 queue = ctx->rx_queue_index, zero = 0;
	struct queue_stats *s;

	s = bpf_map_lookup_elem(&stats, &zero);
	if (!s || queue > QUEUES)
		return XDP_PASS;
	s->packets[queue]++;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
