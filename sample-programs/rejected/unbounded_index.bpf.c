// SPDX-License-Identifier: GPL-2.0
/* Mistake: a map value indexed by an unchecked 32-bit value. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

struct buckets {
	__u64 n[32];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct buckets);
} by_len SEC(".maps");

SEC("tc")
__rejected("all", "unbounded memory access")
int length_histogram(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct buckets *b = bpf_map_lookup_elem(&by_len, &key);

	if (!b)
		return 0;
	b->n[skb->len]++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
