// SPDX-License-Identifier: GPL-2.0
/* Mistake: the key is passed by value, cast to a pointer, instead of by
 * its address.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} by_mark SEC(".maps");

SEC("tc")
__rejected("all", "R2 type=(inv|scalar) expected=fp")
int lookup_mark(struct __sk_buff *skb)
{
	__u64 *v = bpf_map_lookup_elem(&by_mark, (void *)(long)skb->mark);

	return v ? 1 : 0;
}

char LICENSE[] SEC("license") = "GPL";
