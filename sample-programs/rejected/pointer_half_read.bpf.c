// SPDX-License-Identifier: GPL-2.0
/* Mistake: reading half of a pointer kept on the stack, here to hash the
 * map value's address. A spilled pointer can only be read back whole.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} slots SEC(".maps");

SEC("xdp")
__rejected("all", "invalid size of register fill")
int hash_slot(struct xdp_md *ctx)
{
	__u32 key = 0;
	volatile union {
		__u64 *ptr;
		__u32 half[2];
	} slot;

	slot.ptr = bpf_map_lookup_elem(&slots, &key);
	if (slot.half[0] & 1)
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
