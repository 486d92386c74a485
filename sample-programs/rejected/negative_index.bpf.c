// SPDX-License-Identifier: GPL-2.0
/* Mistake: a signed index checked against the upper bound only. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

struct slots {
	__u64 count[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct slots);
} per_slot SEC(".maps");

SEC("tc")
__rejected("all", "math between map_value pointer and register with unbounded min value is not allowed")
int count_mark(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct slots *s = bpf_map_lookup_elem(&per_slot, &key);
	int slot = (int)skb->mark;

	if (!s || slot >= 16)
		return 0;
	s->count[slot]++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
