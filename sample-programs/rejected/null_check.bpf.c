// SPDX-License-Identifier: GPL-2.0
/* Mistake: the result of bpf_map_lookup_elem() is used without a NULL
 * check. The lookup returns NULL for a missing key, so the verifier
 * refuses the load through a map_value_or_null pointer.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "verifier.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

SEC("xdp")
__rejected("all", "invalid mem access 'map_value_or_null'")
int count_ifindex(struct xdp_md *ctx)
{
	__u32 key = ctx->ingress_ifindex;
	__u64 *count = bpf_map_lookup_elem(&seen, &key);

	*count += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
