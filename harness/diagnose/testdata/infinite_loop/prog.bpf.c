// SPDX-License-Identifier: GPL-2.0
/* Mistake: a busy-wait on a map value. Nothing in the loop changes what the
 * verifier knows, so it cannot prove that the loop ends. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} enabled SEC(".maps");

SEC("xdp")
int wait_until_enabled(struct xdp_md *ctx)
{
	__u32 zero = 0;
	volatile __u32 *on;

	on = bpf_map_lookup_elem(&enabled, &zero);
	if (!on)
		return XDP_PASS;
	while (!*on)
		;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
