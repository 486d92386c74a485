// SPDX-License-Identifier: GPL-2.0
/* Mistake: an early return inside a bpf_spin_lock() section leaves the
 * lock held.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

struct counter {
	struct bpf_spin_lock lock;
	__u64 packets;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counter);
} counters SEC(".maps");

SEC("tc")
__rejected("all", "bpf_spin_unlock is missing|cannot be used inside bpf_spin_lock-ed region")
int count_locked(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct counter *c = bpf_map_lookup_elem(&counters, &key);

	if (!c)
		return 0;
	bpf_spin_lock(&c->lock);
	if (c->packets > 1000000)
		return 0;
	c->packets++;
	bpf_spin_unlock(&c->lock);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
