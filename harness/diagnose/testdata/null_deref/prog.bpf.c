// SPDX-License-Identifier: GPL-2.0
/* Mistake: the result of bpf_map_lookup_elem() is used without a NULL check. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} rx_packets SEC(".maps");

SEC("xdp")
int count_rx_queue(struct xdp_md *ctx)
{
	__u32 queue = ctx->rx_queue_index;
	__u64 *count;

	count = bpf_map_lookup_elem(&rx_packets, &queue);
	*count += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
